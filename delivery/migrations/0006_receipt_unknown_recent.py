from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # Built without locking the receipts table against the webhooks' inserts.
    atomic = False

    dependencies = [
        ("delivery", "0005_inboundreceipt_unknown_recipients"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="inboundreceipt",
            index=models.Index(
                condition=models.Q(("unknown_recipients", []), _negated=True),
                fields=["-received_at"],
                name="receipt_unknown_recent",
            ),
        ),
    ]
