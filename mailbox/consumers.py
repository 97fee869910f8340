"""The websocket a browser tab keeps open to receive its mailbox's live updates."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from mailbox.selectors import mailbox_get_for_user
from mailsite.realtime import mailbox_group_name

UNAUTHORISED = 4401


class MailboxConsumer(AsyncJsonWebsocketConsumer):
    """Joins the logged-in user's mailbox group and relays its events to the browser."""

    group_name = ""

    async def connect(self) -> None:
        user = self.scope.get("user")
        mailbox = (
            await database_sync_to_async(mailbox_get_for_user)(user=user) if user and user.is_authenticated else None
        )
        if mailbox is None:
            await self.close(code=UNAUTHORISED)
            return
        self.group_name = mailbox_group_name(mailbox.id)
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.group_name:
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def mailbox_event(self, message: dict) -> None:
        await self.send_json(message["payload"])

    async def mailbox_events(self, message: dict) -> None:
        """Several events published together (``mailbox_publish_many_on_commit``): one frame each."""
        for payload in message["payloads"]:
            await self.send_json(payload)
