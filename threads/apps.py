from django.apps import AppConfig


class ThreadsConfig(AppConfig):
    """Conversations: resolving a message to its thread and keeping thread summaries.

    Works from headers and participants alone and imports no other app; rows carry the
    owning mailbox's id as a plain column (the partition key), not a foreign key upward.
    """

    name = "threads"
