from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    """Transport: raw storage, inbound receipts, outbound deliveries, tracking events, suppression.

    Never imports ``mailbox``: per-user rows carry the mailbox id as a plain column.
    """

    name = "delivery"
