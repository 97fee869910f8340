import pytest

from campaigns.selectors import domain_events_after
from mailsite.events import domain_event_record
from mailsite.models import DomainEvent


@pytest.mark.django_db
def test_events_are_read_in_order_after_a_cursor_and_filtered_by_type():
    first = domain_event_record(event_type=DomainEvent.Type.MESSAGE_RECEIVED, subject_type="message", subject_id=1)
    second = domain_event_record(event_type=DomainEvent.Type.MESSAGE_SENT, subject_type="message", subject_id=2)
    third = domain_event_record(event_type=DomainEvent.Type.MESSAGE_RECEIVED, subject_type="message", subject_id=3)

    assert domain_events_after(after_id=first.id) == [second, third]
    assert domain_events_after(after_id=0, event_types=["message.received"]) == [first, third]
    assert domain_events_after(after_id=0, limit=1) == [first]
