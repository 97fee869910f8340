"""Demo mail: a few hundred realistic, threaded RFC 5322 messages, so a first run shows a living inbox.

Generation is pure and deterministic for a seed, apart from the dates, which are anchored to ``now``.
``demo_mailbox_seed`` delivers the messages through ``message_import_raw``, the path real mail takes.

- ``people``: the user and their correspondents
- ``texts``: topics, small talk, automated senders and placeholder values
- ``posts``: what each thread says and who says it
- ``attachments``: generated CSV, text and PNG attachments
- ``generator``: dates, ids and RFC 5322 bytes
- ``seeding``: delivery into a mailbox
"""

from mailbox.demo.generator import DemoMessage, demo_messages
from mailbox.demo.people import Person
from mailbox.demo.seeding import SOURCE_TAG, SeedResult, demo_mailbox_seed

__all__ = ["SOURCE_TAG", "DemoMessage", "Person", "SeedResult", "demo_mailbox_seed", "demo_messages"]
