import django.contrib.postgres.fields
from django.db import migrations, models

# Receipts parsed before this field existed carry their unknown recipients only as text in
# last_error (mailbox.services.receiving wrote "unknown local recipients: a, b" on parsed ones and
# "no local recipient: unknown a, b" as the quarantine reason): move them into the field. The note
# on a parsed receipt was not an error, so it is cleared; a quarantine reason stays.
BACKFILL = """
UPDATE delivery_inboundreceipt
SET unknown_recipients = string_to_array(substr(last_error, length('unknown local recipients: ') + 1), ', '),
    last_error = ''
WHERE status = 'parsed' AND last_error LIKE 'unknown local recipients: %';
UPDATE delivery_inboundreceipt
SET unknown_recipients = string_to_array(substr(last_error, length('no local recipient: unknown ') + 1), ', ')
WHERE status = 'quarantined' AND last_error LIKE 'no local recipient: unknown %';
"""


class Migration(migrations.Migration):

    dependencies = [
        ("delivery", "0004_outbound_sending_state"),
    ]

    operations = [
        migrations.AddField(
            model_name="inboundreceipt",
            name="unknown_recipients",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.CharField(max_length=998), blank=True, default=list, size=None
            ),
        ),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
    ]
