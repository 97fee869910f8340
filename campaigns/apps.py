from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    """Marketing: audiences, templates, scheduled sends, workflows. Sits on top of the graph:
    it calls ``delivery`` to send and reads the domain event log; nothing below imports it."""

    name = "campaigns"
