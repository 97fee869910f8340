"""The domain event log is append-only: the database refuses updates and deletes."""

from django.db import migrations

SQL = """
CREATE FUNCTION mailsite_domainevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the domain event log is append-only' USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER mailsite_domainevent_append_only BEFORE UPDATE OR DELETE ON mailsite_domainevent
    FOR EACH ROW EXECUTE FUNCTION mailsite_domainevent_append_only();
"""

REVERSE_SQL = """
DROP TRIGGER IF EXISTS mailsite_domainevent_append_only ON mailsite_domainevent;
DROP FUNCTION IF EXISTS mailsite_domainevent_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("mailsite", "0001_initial")]
    operations = [migrations.RunSQL(SQL, REVERSE_SQL)]
