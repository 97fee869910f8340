"""A channel layer that cannot be reached must not turn a committed change into an error page:
the change is saved, the push is lost and logged, and open tabs catch up from the event log when
their socket reconnects (mailbox.selectors.events_since)."""

import pytest
from django.test import Client
from django.urls import reverse

from mailbox.models import Label
from mailbox.services.preferences import user_label_create
from mailsite.models import DomainEvent

# Nothing listens on port 1: every publish fails at once with a refused connection.
UNREACHABLE = {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}


@pytest.mark.django_db(transaction=True)
def test_a_change_whose_live_update_cannot_be_published_still_succeeds(mailbox, settings, caplog):
    settings.CHANNEL_LAYERS = {"default": UNREACHABLE}
    label = user_label_create(mailbox=mailbox, name="Doomed")
    client = Client(raise_request_exception=False)
    client.force_login(mailbox.user)

    response = client.post(reverse("label_delete", args=[label.id]), {"confirm": "1"})

    assert (response.status_code, response.url) == (302, reverse("labels"))
    assert not Label.objects.filter(pk=label.id).exists()
    assert DomainEvent.objects.filter(event_type=DomainEvent.Type.LABEL_DELETED, subject_id=label.id).exists()
    assert any("on_commit" in record.getMessage() for record in caplog.records)
