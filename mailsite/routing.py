from django.urls import path

from mailbox.consumers import MailboxConsumer

websocket_urlpatterns = [
    path("ws/mailbox/", MailboxConsumer.as_asgi()),
]
