"""Blobs are immutable: the database refuses any change to a blob's content columns."""

from django.db import migrations

SQL = """
CREATE FUNCTION delivery_blob_immutable() RETURNS trigger AS $$
BEGIN
    IF NEW.sha256 IS DISTINCT FROM OLD.sha256
       OR NEW.size IS DISTINCT FROM OLD.size
       OR NEW.storage_key IS DISTINCT FROM OLD.storage_key THEN
        RAISE EXCEPTION 'blob % is immutable', OLD.id USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER delivery_blob_immutable BEFORE UPDATE ON delivery_blob
    FOR EACH ROW EXECUTE FUNCTION delivery_blob_immutable();
"""

REVERSE_SQL = """
DROP TRIGGER IF EXISTS delivery_blob_immutable ON delivery_blob;
DROP FUNCTION IF EXISTS delivery_blob_immutable();
"""


class Migration(migrations.Migration):
    dependencies = [("delivery", "0001_initial")]
    operations = [migrations.RunSQL(SQL, REVERSE_SQL)]
