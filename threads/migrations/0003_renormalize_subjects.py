"""Recompute Thread.normalized_subject with the resolver's rules: only the list's own tag is stripped
now (``[PATCH v2]`` and ``[TECH TOPIC]`` stay part of the subject), so keys made before would not
match the keys of new replies. Batched; touches only the rows whose key changes."""

from django.db import migrations

from threads.subjects import normalize_subject

BATCH = 2000


def renormalize(apps, schema_editor):
    Thread = apps.get_model("threads", "Thread")
    changed = []
    for thread in Thread.objects.only("id", "subject", "list_id", "normalized_subject").iterator(chunk_size=BATCH):
        key = normalize_subject(thread.subject, list_id=thread.list_id)
        if key != thread.normalized_subject:
            thread.normalized_subject = key
            changed.append(thread)
        if len(changed) >= BATCH:
            Thread.objects.bulk_update(changed, ["normalized_subject"])
            changed = []
    Thread.objects.bulk_update(changed, ["normalized_subject"])


class Migration(migrations.Migration):

    dependencies = [
        ("threads", "0002_resolver_state"),
    ]

    operations = [
        migrations.RunPython(renormalize, migrations.RunPython.noop),
    ]
