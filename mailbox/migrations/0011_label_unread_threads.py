"""Each label's count of unread threads, kept by PostgreSQL in ``mailbox_label.unread_threads``.

Every list page shows the unread count of every label; counting them at read time (``COUNT(*)`` over
the unread rows of ``mailbox_threadlabel``) cost the database ~2 ms of CPU per page with 20,000 unread
threads, more than all the page's other queries together. Statement-level triggers on
``mailbox_threadlabel`` add each statement's change to its labels' counts in the writing transaction,
whichever code path writes the rows (services, raw SQL, deletes that cascade).

The column is deliberately not a field of the ``Label`` model: Django never writes it (a ``label.save()``
would otherwise write back a count read earlier); ``mailbox.selectors`` reads it in SQL. A statement's
labels are updated in id order.
"""

from django.db import migrations

# Transition tables are visible only to the trigger function's own statements, and an INSERT trigger
# has no old rows (a DELETE trigger no new ones): each event reads the tables it has.
FUNCTION = """
CREATE FUNCTION mailbox_label_unread_threads() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    change record;
BEGIN
    IF TG_OP = 'INSERT' THEN
        FOR change IN
            SELECT label_id, count(*) AS delta FROM new_rows WHERE unread_count > 0
            GROUP BY label_id ORDER BY label_id
        LOOP
            UPDATE mailbox_label SET unread_threads = unread_threads + change.delta WHERE id = change.label_id;
        END LOOP;
    ELSIF TG_OP = 'DELETE' THEN
        FOR change IN
            SELECT label_id, count(*) AS delta FROM old_rows WHERE unread_count > 0
            GROUP BY label_id ORDER BY label_id
        LOOP
            UPDATE mailbox_label SET unread_threads = unread_threads - change.delta WHERE id = change.label_id;
        END LOOP;
    ELSE
        FOR change IN
            SELECT d.label_id, sum(d.delta) AS delta FROM (
                SELECT label_id, 1 AS delta FROM new_rows WHERE unread_count > 0
                UNION ALL
                SELECT label_id, -1 AS delta FROM old_rows WHERE unread_count > 0
            ) AS d
            GROUP BY d.label_id HAVING sum(d.delta) <> 0 ORDER BY d.label_id
        LOOP
            UPDATE mailbox_label SET unread_threads = unread_threads + change.delta WHERE id = change.label_id;
        END LOOP;
    END IF;
    RETURN NULL;
END
$$;
"""

FORWARD = f"""
ALTER TABLE mailbox_label ADD COLUMN unread_threads integer NOT NULL DEFAULT 0
    CONSTRAINT label_unread_threads_not_negative CHECK (unread_threads >= 0);
{FUNCTION}
CREATE TRIGGER threadlabel_unread_insert AFTER INSERT ON mailbox_threadlabel
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION mailbox_label_unread_threads();
CREATE TRIGGER threadlabel_unread_update AFTER UPDATE ON mailbox_threadlabel
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mailbox_label_unread_threads();
CREATE TRIGGER threadlabel_unread_delete AFTER DELETE ON mailbox_threadlabel
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION mailbox_label_unread_threads();
-- The counts so far. The triggers exist already and this transaction holds the tables' locks until
-- it commits, so no write falls between the count and the triggers.
UPDATE mailbox_label AS l SET unread_threads = (
    SELECT count(*) FROM mailbox_threadlabel AS u
    WHERE u.mailbox_id = l.mailbox_id AND u.label_id = l.id AND u.unread_count > 0
);
"""

BACKWARD = """
DROP TRIGGER threadlabel_unread_insert ON mailbox_threadlabel;
DROP TRIGGER threadlabel_unread_update ON mailbox_threadlabel;
DROP TRIGGER threadlabel_unread_delete ON mailbox_threadlabel;
DROP FUNCTION mailbox_label_unread_threads();
ALTER TABLE mailbox_label DROP COLUMN unread_threads;
"""


class Migration(migrations.Migration):
    dependencies = [("mailbox", "0010_message_remote_content")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
