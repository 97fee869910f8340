from django.apps import AppConfig


class MailsiteConfig(AppConfig):
    """The project's own app: shared base models and the domain event log every app appends to."""

    name = "mailsite"
    verbose_name = "Mailsite core"

    def ready(self) -> None:
        from mailsite import checks  # noqa: F401  (registers the system checks)
