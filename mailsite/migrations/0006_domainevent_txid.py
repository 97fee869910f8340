"""Each domain event records the id of the transaction that wrote it (``txid``), so a tab's
catch-up cursor can be a snapshot rather than an event id (see ``mailbox.selectors.live_cursor``).

The column is the database's alone: its default fills it in, Django's model does not declare it
(so ``save``, ``bulk_create`` and ``rows_insert`` never write it). Events written before this
migration keep NULL: no cursor handed out after it reaches back to them. Adding a column with
no default and then setting one rewrites nothing.
"""

from django.db import migrations

COLUMN_SQL = """
ALTER TABLE mailsite_domainevent ADD COLUMN txid bigint;
ALTER TABLE mailsite_domainevent ALTER COLUMN txid SET DEFAULT (pg_current_xact_id()::text::bigint);
"""
# Built without blocking the writes that append events meanwhile (every write path appends one).
INDEX_SQL = "CREATE INDEX CONCURRENTLY IF NOT EXISTS domainevent_mailbox_txid ON mailsite_domainevent (mailbox_id, txid)"

REVERSE_COLUMN_SQL = "ALTER TABLE mailsite_domainevent DROP COLUMN IF EXISTS txid"
REVERSE_INDEX_SQL = "DROP INDEX CONCURRENTLY IF EXISTS domainevent_mailbox_txid"


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY runs outside a transaction
    dependencies = [("mailsite", "0005_domainevent_label_changed")]
    operations = [
        migrations.RunSQL(COLUMN_SQL, REVERSE_COLUMN_SQL),
        migrations.RunSQL(INDEX_SQL, REVERSE_INDEX_SQL),
    ]
