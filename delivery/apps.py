from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    """Transport: raw storage, inbound receipts, outbound deliveries, tracking events, suppression.

    Never imports ``mailbox``: per-user rows carry the mailbox id as a plain column.
    """

    name = "delivery"

    def ready(self) -> None:
        # Imported once the app registry is ready: the receiver and the tasks reach the models.
        from anymail.signals import tracking

        from delivery import tasks  # noqa: F401 - registers the tasks queued by name
        from delivery.receivers import anymail_tracking_received

        tracking.connect(anymail_tracking_received, dispatch_uid="delivery.anymail_tracking")
