"""The one way the domain publishes live updates to browsers: a channel-layer group per mailbox."""

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction


def mailbox_group_name(mailbox_id: int) -> str:
    return f"mailbox.{mailbox_id}"


def mailbox_publish_on_commit(*, mailbox_id: int, event: dict[str, Any]) -> None:
    """Send ``event`` to every socket of the mailbox once the current transaction commits.

    Consumers receive it as a ``mailbox.event`` message with the event under ``payload``.
    """

    def publish() -> None:
        layer = get_channel_layer()
        async_to_sync(layer.group_send)(mailbox_group_name(mailbox_id), {"type": "mailbox.event", "payload": event})

    transaction.on_commit(publish)


def mailboxes_publish_on_commit(*, events: list[tuple[int, dict[str, Any]]]) -> None:
    """``mailbox_publish_on_commit`` for many (mailbox id, event) pairs: one callback, one event loop
    and one connection to the channel layer for them all, in order (a batch of deliveries)."""
    if not events:
        return

    async def send_all() -> None:
        layer = get_channel_layer()
        for mailbox_id, event in events:
            await layer.group_send(mailbox_group_name(mailbox_id), {"type": "mailbox.event", "payload": event})

    def publish() -> None:
        async_to_sync(send_all)()

    transaction.on_commit(publish)
