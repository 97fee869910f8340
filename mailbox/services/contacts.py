"""Writes for contacts: the addresses a mailbox corresponds with, for autocomplete.

Contacts come from the mail itself as it is delivered (``correspondents_of`` per message, then
``contacts_record`` once per batch): the people who wrote to the mailbox, and those it wrote to,
including mail imported from another provider's Sent folder or a Takeout archive. Each exchange
adds one to ``times_contacted``; ``last_contacted_at`` is the latest message's date.
"""

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from mailbox.models import Alias, Contact, Label, Mailbox
from mailbox.parsing import ParsedMessage

# A message the mailbox sent names its correspondents as recipients; one it received, as sender.
_RECIPIENT_ROLES = ("to", "cc", "bcc")
# Folders whose senders are no correspondents: spam is not someone the user knows.
_NOT_CORRESPONDENCE = frozenset({Label.Role.SPAM})


@dataclass(frozen=True)
class Correspondent:
    mailbox_id: int
    address: str
    display_name: str
    at: datetime


def contact_record(*, mailbox: Mailbox, address: str, display_name: str = "") -> Contact:
    """Count one exchange with ``address`` now (the contact is created on first use); a non-empty
    name given replaces the one known. The single-contact form of ``contacts_record``."""
    address = address.strip().lower()
    contacts_record(correspondents=[Correspondent(mailbox.id, address, display_name, timezone.now())])
    return Contact.objects.get(mailbox=mailbox, address=address)


def correspondents_of(
    *, mailbox_id: int, parsed: ParsedMessage, own: Collection[str], label_roles: Iterable[str], at: datetime
) -> list[Correspondent]:
    """Whom a delivered message shows the mailbox corresponding with: its recipients when the
    mailbox sent it (from one of ``own`` addresses, or filed under Sent: a Takeout archive's Sent
    mail is from the user's old address), else its sender. None for list mail (the poster wrote
    to the list), reports (bounces, receipts: from a machine), spam, and malformed messages.
    Pure: no query."""
    roles = set(label_roles)
    if parsed.list_id or parsed.report is not None or parsed.is_malformed or _NOT_CORRESPONDENCE & roles:
        return []
    sender = parsed.sender.address
    if sender in own or Label.Role.SENT in roles:
        found = [a for role in _RECIPIENT_ROLES for a in parsed.addresses.get(role, [])]
        not_correspondents = {*own, sender}
    else:
        found = [parsed.sender] if sender else []
        not_correspondents = set(own)
    return [
        Correspondent(mailbox_id, a.address[:320], a.name[:255], at)
        for a in found
        if a.address and a.address not in not_correspondents
    ]


# One statement per batch. ON CONFLICT may touch a row once per statement, so the batch is folded
# per (mailbox, address) first; rows go in key order, so two batches lock shared contacts in the
# same order and cannot deadlock.
_CONTACTS_UPSERT_SQL = """
INSERT INTO mailbox_contact (mailbox_id, address, display_name, times_contacted, last_contacted_at)
SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::int[], %s::timestamptz[])
ON CONFLICT (mailbox_id, address) DO UPDATE SET
    times_contacted = mailbox_contact.times_contacted + EXCLUDED.times_contacted,
    last_contacted_at = GREATEST(mailbox_contact.last_contacted_at, EXCLUDED.last_contacted_at),
    display_name = CASE
        WHEN EXCLUDED.display_name <> ''
         AND EXCLUDED.last_contacted_at >= COALESCE(mailbox_contact.last_contacted_at, EXCLUDED.last_contacted_at)
        THEN EXCLUDED.display_name
        WHEN mailbox_contact.display_name = '' THEN EXCLUDED.display_name
        ELSE mailbox_contact.display_name
    END
"""


def contacts_record(*, correspondents: list[Correspondent]) -> None:
    """Count each correspondent's exchanges into their contact (created on first), in one statement.

    The name kept is the one the latest message used, unless that one gave none."""
    if not correspondents:
        return
    folded: dict[tuple[int, str], list] = {}
    for c in sorted(correspondents, key=lambda c: c.at):
        entry = folded.setdefault((c.mailbox_id, c.address), [c.display_name, 0, c.at])
        entry[0] = c.display_name or entry[0]
        entry[1] += 1
        entry[2] = c.at
    keys = sorted(folded)
    columns = [
        [mailbox_id for mailbox_id, _ in keys],
        [address for _, address in keys],
        *([folded[key][index] for key in keys] for index in range(3)),
    ]
    with connection.cursor() as cursor:
        cursor.execute(_CONTACTS_UPSERT_SQL, columns)


# The same rules as ``correspondents_of``, over the mail a mailbox already holds (its participants).
# Reports are not told apart here (the message row does not record one); they come from a
# mailer-daemon and rank low.
_CONTACTS_BACKFILL_SQL = """
INSERT INTO mailbox_contact (mailbox_id, address, display_name, times_contacted, last_contacted_at)
SELECT p.mailbox_id, p.address,
       COALESCE((array_agg(p.display_name ORDER BY m.date DESC) FILTER (WHERE p.display_name <> ''))[1], ''),
       count(*), max(m.date)
FROM mailbox_participant p
JOIN mailbox_message m ON m.id = p.message_id
CROSS JOIN LATERAL (
    SELECT m.from_address = ANY(%(own)s) OR EXISTS (
        SELECT 1 FROM mailbox_messagelabel ml JOIN mailbox_label l ON l.id = ml.label_id
        WHERE ml.message_id = m.id AND l.role = 'sent'
    ) AS sent
) AS direction
WHERE p.mailbox_id = %(mailbox)s AND m.mailbox_id = %(mailbox)s
  AND NOT m.is_draft AND m.list_id = '' AND p.address <> '' AND NOT p.address = ANY(%(own)s)
  AND NOT EXISTS (
      SELECT 1 FROM mailbox_messagelabel ml JOIN mailbox_label l ON l.id = ml.label_id
      WHERE ml.message_id = m.id AND l.role = 'spam'
  )
  AND CASE WHEN direction.sent THEN p.role IN ('to', 'cc', 'bcc') AND p.address <> m.from_address
           ELSE p.role = 'from' AND p.position = 0 END
GROUP BY p.mailbox_id, p.address
ON CONFLICT (mailbox_id, address) DO UPDATE SET
    times_contacted = GREATEST(mailbox_contact.times_contacted, EXCLUDED.times_contacted),
    last_contacted_at = GREATEST(mailbox_contact.last_contacted_at, EXCLUDED.last_contacted_at),
    display_name = CASE WHEN EXCLUDED.display_name <> '' THEN EXCLUDED.display_name
                        ELSE mailbox_contact.display_name END
"""


@transaction.atomic
def contacts_backfill(*, mailbox: Mailbox) -> int:
    """Contacts from the mail ``mailbox`` already holds (delivered before contacts came from mail),
    in one statement; returns the contacts written. Safe to repeat: counts are the totals over all
    its mail, never added twice."""
    own = sorted({mailbox.address, *Alias.objects.filter(mailbox=mailbox).values_list("address", flat=True)})
    with connection.cursor() as cursor:
        cursor.execute(_CONTACTS_BACKFILL_SQL, {"own": own, "mailbox": mailbox.id})
        return cursor.rowcount
