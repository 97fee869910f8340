"""The hand-off: Anymail's test backend, a scripted failing backend, retries, dead letters, the
claim that keeps a send single, and a real SMTP round trip into our own listener."""

import socket
from datetime import timedelta
from email import message_from_bytes
from email.policy import default
from io import StringIO
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from django.core import mail
from django.core.management import call_command
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from delivery.models import OutboundDelivery
from delivery.outbound import outbound_claim, outbound_release_due, outbound_send, outbound_sweep_interrupted
from delivery.selectors import blob_read
from delivery.tasks import outbound_release_task
from mailbox.management.commands.runsmtpd import smtp_listener
from mailbox.models import Label, Message
from mailbox.services import mailbox_create
from mailbox.services.sending import OutgoingMail, delivery_timeline_for_message, message_send
from tests.delivery.scripted_backend import LOG_ENV, SCRIPT_ENV, ScriptedBackend, sends_logged

SCRIPTED = "tests.delivery.scripted_backend.ScriptedBackend"


@pytest.fixture(autouse=True)
def _no_undo_delay(settings):
    settings.MAILSITE_UNDO_SEND_SECONDS = 0


@pytest.fixture
def scripted(settings, tmp_path: Path, monkeypatch):
    """The scripted backend; returns a function that sets its script, and the log path."""
    settings.EMAIL_BACKEND = SCRIPTED
    script, log = tmp_path / "script", tmp_path / "sent.log"
    monkeypatch.setenv(SCRIPT_ENV, str(script))
    monkeypatch.setenv(LOG_ENV, str(log))

    def set_script(*outcomes: str) -> Path:
        script.write_text("".join(f"{o}\n" for o in outcomes))
        return log

    return set_script


def send(mailbox, committed, to=("carol@example.org",), **fields):
    mail_ = OutgoingMail(from_address=mailbox.address, to=list(to), subject="Report", text="Attached.", **fields)
    with committed(execute=True):
        return message_send(mailbox=mailbox, mail=mail_)


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


def make_due(delivery: OutboundDelivery) -> list[int]:
    """Jump past the back-off or undo delay (as if no task were on its way): the release finds the
    delivery due and hands back its id."""
    OutboundDelivery.objects.filter(pk=delivery.pk).update(
        send_after=timezone.now() - timedelta(seconds=1), enqueued_at=None
    )
    return outbound_release_due()


def test_anymail_carries_the_delivery_id_the_source_tag_and_our_headers(mailbox, committed, settings):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"

    message = send(mailbox, committed, cc=["dan@example.org"])

    deliveries = list(OutboundDelivery.objects.order_by("id"))
    outbox = sorted(mail.outbox, key=lambda m: m.to)  # the batch's connections work side by side
    assert [m.to for m in outbox] == [["carol@example.org"], ["dan@example.org"]]
    for delivery, sent in zip(deliveries, outbox, strict=True):
        params = sent.anymail_test_params
        assert params["tags"] == ["sent"]
        assert params["metadata"] == {"delivery_id": str(delivery.id), "attempt_id": str(delivery.attempt_id)}
        assert params["extra_headers"]["Message-ID"] == f"<{message.message_id}>"
        assert params["extra_headers"]["X-Mailsite-Delivery"] == str(delivery.id)
        assert (delivery.status, delivery.esp) == ("sent", "test")
        assert delivery.esp_message_id != ""
        assert delivery.handed_off_at is not None


def test_a_transient_error_is_retried_with_backoff_then_sent(mailbox, committed, scripted):
    log = scripted("421 4.7.0 Try again later")

    send(mailbox, committed)

    delivery = OutboundDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("queued", 1)
    assert delivery.send_after > timezone.now()
    assert "421 4.7.0 Try again later" in delivery.last_error
    assert outbound_release_due() == []  # not before its back-off
    outbound_send(delivery_ids=make_due(delivery))
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("sent", 2, "")
    assert len(sends_logged(log)) == 2
    events = list(delivery.events.order_by("id").values_list("event_type", flat=True))
    assert events == ["queued", "deferred", "sent"]


def test_a_permanent_error_fails_the_delivery_with_the_reason(mailbox, committed, scripted):
    scripted("550 5.1.1 <carol@example.org>: Recipient address rejected: User unknown")

    message = send(mailbox, committed)

    delivery = OutboundDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    timeline = delivery_timeline_for_message(mailbox=mailbox, message_id=message.id)
    assert timeline[0].failure_text == (
        "Not delivered to carol@example.org: 550 5.1.1 <carol@example.org>: Recipient address rejected: User unknown"
    )
    assert [s.event_type for s in timeline[0].steps] == ["queued", "failed"]
    assert outbound_release_due(now=timezone.now() + timedelta(days=1)) == []


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        ("http 429 Too Many Requests", "queued"),
        ("http 503 Service Unavailable", "queued"),
        ("http 400 Invalid 'To' address", "failed"),
        ("esp rejected", "failed"),
        ("esp invalid", "failed"),
    ],
)
def test_esp_api_answers_are_retried_or_failed_by_their_meaning(mailbox, committed, scripted, answer, status):
    log = scripted(answer)

    message = send(mailbox, committed)

    delivery = OutboundDelivery.objects.get()
    assert delivery.status == status
    if status == "queued":  # throttled or down: back-off, then it goes
        outbound_send(delivery_ids=make_due(delivery))
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == ("sent", 2)
        assert len(sends_logged(log)) == 2
    else:
        [timeline] = delivery_timeline_for_message(mailbox=mailbox, message_id=message.id)
        assert timeline.failure_text.startswith("Not delivered to carol@example.org: ")
        expected = f"API response 400 ({answer[9:]})" if answer.startswith("http") else repr(answer[4:])
        assert expected in timeline.failure_text
        assert outbound_release_due(now=timezone.now() + timedelta(days=1)) == []


def test_exhausted_retries_dead_letter_and_staff_retry_from_admin(mailbox, committed, scripted, settings, admin_client):
    settings.MAILSITE_OUTBOUND_MAX_ATTEMPTS = 2
    log = scripted("disconnect", "421 4.3.0 busy")

    send(mailbox, committed)
    delivery = OutboundDelivery.objects.get()
    outbound_send(delivery_ids=make_due(delivery))

    delivery.refresh_from_db()
    assert delivery.status == "dead"
    assert delivery.last_error == "gave up after 2 attempts: 421 4.3.0 busy"
    history = list(delivery.events.exclude(event_type="queued").values_list("event_type", "mta_response"))
    assert history == [("deferred", "Connection unexpectedly closed"), ("failed", "421 4.3.0 busy")]
    page = admin_client.get(reverse("admin:delivery_outbounddelivery_change", args=[delivery.id]))
    assert b"Connection unexpectedly closed" in page.content

    with committed(execute=True):
        response = admin_client.post(
            reverse("admin:delivery_outbounddelivery_changelist"),
            {"action": "retry", "_selected_action": [delivery.id]},
            follow=True,
        )

    assert b"Queued 1 delivery(ies)" in response.content
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 1)
    assert len(sends_logged(log)) == 3


def test_a_claimed_delivery_is_never_claimed_again(mailbox, committed, scripted, settings):
    settings.MAILSITE_UNDO_SEND_SECONDS = 10
    log = scripted()
    send(mailbox, committed)
    delivery = OutboundDelivery.objects.get()
    OutboundDelivery.objects.update(send_after=timezone.now())

    claimed = outbound_claim(delivery_ids=[delivery.id])

    assert [d.status for d in claimed] == ["sending"]
    # A duplicate task, a redelivered task and the release sweeper all find nothing to do.
    assert outbound_send(delivery_ids=[delivery.id]).sent == 0
    assert outbound_release_due(now=timezone.now() + timedelta(hours=1)) == []
    assert sends_logged(log) == []


def test_an_attempt_interrupted_mid_send_is_dead_lettered_not_resent(mailbox, committed, scripted, settings):
    settings.MAILSITE_UNDO_SEND_SECONDS = 10
    log = scripted()
    send(mailbox, committed)
    OutboundDelivery.objects.update(send_after=timezone.now())
    [claimed] = outbound_claim(delivery_ids=list(OutboundDelivery.objects.values_list("id", flat=True)))

    assert outbound_sweep_interrupted() == []  # within the lease
    swept = outbound_sweep_interrupted(now=timezone.now() + settings.MAILSITE_OUTBOUND_SENDING_LEASE * 2)

    assert swept == [claimed.id]
    claimed.refresh_from_db()
    assert claimed.status == "dead"
    assert f"attempt {claimed.attempt_id} was interrupted mid-send" in claimed.last_error
    assert sends_logged(log) == []


def test_the_beat_task_queues_what_is_due_exactly_once(mailbox, committed, scripted, settings):
    settings.MAILSITE_UNDO_SEND_SECONDS = 10
    log = scripted()
    send(mailbox, committed, to=["a@example.org", "b@example.org"])
    # The broker lost the task queued at commit: the send is due and its task lease is over.
    past = timezone.now() - settings.MAILSITE_OUTBOUND_REQUEUE_AFTER * 2
    OutboundDelivery.objects.update(send_after=past, enqueued_at=past)

    with committed(execute=True):
        assert outbound_release_task() == 2
    with committed(execute=True):
        assert outbound_release_task() == 0

    assert set(OutboundDelivery.objects.values_list("status", flat=True)) == {"sent"}
    assert sorted(s["to"][0] for s in sends_logged(log)) == ["a@example.org", "b@example.org"]


def test_a_batch_shares_one_connection(mailbox, committed, scripted):
    scripted()
    ScriptedBackend.opened = 0

    send(mailbox, committed, to=["a@example.org", "b@example.org", "c@example.org"])

    assert OutboundDelivery.objects.filter(status="sent").count() == 3
    # open() is called before each message but a backend object (its connection) serves many.
    assert ScriptedBackend.opened == 3


# --- A real SMTP round trip --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def listener(monkeypatch):
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    controller = smtp_listener(host="127.0.0.1", port=free_port(), max_message_bytes=1_000_000)
    controller.start()
    yield controller
    controller.stop()


class _KeepingSink:
    """An aiosmtpd handler that keeps each envelope and its bytes (a relay that only listens)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"


@pytest.fixture
def sink(settings):
    handler = _KeepingSink()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    yield handler
    controller.stop()


def _batch_send_cost(mailbox, committed, count: int) -> tuple[int, list, list[OutboundDelivery]]:
    """Queries and on-commit callbacks (live pushes) of one batch: ``count`` recipients of one message."""
    with committed(execute=False):
        message = message_send(
            mailbox=mailbox,
            mail=OutgoingMail(
                from_address=mailbox.address,
                to=[f"r{n}@relay.example.org" for n in range(count)],
                subject="S",
                text="T",
            ),
        )
    deliveries = list(OutboundDelivery.objects.filter(message_id=message.id).order_by("id"))
    with CaptureQueriesContext(connection) as queries, committed(execute=True) as callbacks:
        outbound_send(delivery_ids=[d.id for d in deliveries])
    return len(queries), callbacks, deliveries


def test_a_batch_costs_the_same_queries_and_one_push_per_message_whatever_its_size(mailbox, committed, sink, settings):
    settings.MAILSITE_OUTBOUND_CONNECTIONS = 2
    few_queries, few_pushes, _ = _batch_send_cost(mailbox, committed, 2)
    many_queries, many_pushes, deliveries = _batch_send_cost(mailbox, committed, 12)

    assert many_queries == few_queries  # set-based claim and record: nothing per delivery
    assert len(many_pushes) == len(few_pushes) == 1  # one delivery.updated per message, not per copy
    assert {d.status for d in OutboundDelivery.objects.filter(message_id=deliveries[0].message_id)} == {"sent"}
    copies = sink.received[2:]
    # Each copy is the stored bytes as they are (never parsed and rebuilt), from its own VERP path.
    assert {content for _, _, content in copies} == {blob_read(blob=deliveries[0].blob)}
    # Over two connections at once (MAILSITE_OUTBOUND_CONNECTIONS): in no particular order.
    expected = sorted((f"bounces+{d.id}@example.test", [d.recipient]) for d in deliveries)
    assert sorted((frm, to) for frm, to, _ in copies) == expected


@pytest.mark.django_db(transaction=True)
def test_smtp_round_trip_into_our_own_listener_threads_both_sides(listener, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", listener.port
    alice = mailbox_create(address="alice@example.test", password=None, display_name="Alice")
    settings.MAILSITE_UNDO_SEND_SECONDS = 10
    sent = message_send(
        mailbox=alice,
        mail=OutgoingMail(from_address=alice.address, to=["bob@remote.test"], subject="Over the wire", text="Hello"),
    )
    # Bob's server (the same listener) learns about his mailbox before the undo delay is over.
    bob = mailbox_create(address="bob@remote.test", password=None, display_name="Bob")
    delivery = OutboundDelivery.objects.get()
    assert not delivery.is_local

    outbound_send(delivery_ids=make_due(delivery))

    delivery.refresh_from_db()
    assert (delivery.status, delivery.esp, delivery.last_error) == ("sent", "smtp", "")
    received = Message.objects.get(mailbox=bob)
    assert (received.message_id, received.subject, received.source_tag) == (sent.message_id, "Over the wire", "smtp")
    assert received.receipt.envelope_sender == f"bounces+{delivery.id}@example.test"
    assert blob_read(blob=received.blob) == blob_read(blob=delivery.blob)  # the bytes we stored, exactly
    assert Label.objects.filter(message_labels__message=received, role=Label.Role.INBOX).exists()

    settings.MAILSITE_UNDO_SEND_SECONDS = 0
    message_send(
        mailbox=bob,
        mail=OutgoingMail(
            from_address=bob.address,
            to=["alice@example.test"],
            subject="Re: Over the wire",
            text="Hi",
            in_reply_to_message_id=received.id,
        ),
    )
    reply_delivery = OutboundDelivery.objects.get(mailbox_id=bob.id)
    outbound_send(delivery_ids=make_due(reply_delivery))

    reply = Message.objects.get(mailbox=alice, subject="Re: Over the wire")
    assert reply.thread_id == sent.thread_id
    assert message_from_bytes(blob_read(blob=reply.blob), policy=default)["In-Reply-To"] == f"<{sent.message_id}>"


def test_the_embedded_default_writes_the_exact_mime_under_the_outbox_folder(mailbox, committed, settings, tmp_path):
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "outbox")

    send(mailbox, committed)

    [written] = (tmp_path / "outbox").iterdir()
    stored = blob_read(blob=OutboundDelivery.objects.get().blob).decode().replace("\r\n", "\n")
    assert stored.strip() in written.read_text()


# Committed for real: inside the test's wrapping transaction the command found its connection closed.
@pytest.mark.django_db(transaction=True)
def test_runoutbound_sends_what_is_due_without_a_beat_or_worker(mailbox, committed, scripted, settings):
    settings.MAILSITE_UNDO_SEND_SECONDS = 10
    log = scripted()
    send(mailbox, committed)
    out = StringIO()

    call_command("runoutbound", "--once", stdout=out)
    assert sends_logged(log) == []  # still within the undo delay

    OutboundDelivery.objects.update(send_after=timezone.now(), enqueued_at=None)
    call_command("runoutbound", "--once", stdout=out)

    assert "sent 1" in out.getvalue()
    assert len(sends_logged(log)) == 1


@pytest.mark.django_db(transaction=True)  # runoutbound closes old connections, as a long process must
def test_without_a_broker_runoutbound_sends_as_soon_as_the_undo_delay_is_over(mailbox, committed, settings):
    """The embedded mode: the send task ran eagerly at commit and found nothing due yet; the
    delivery must then wait only for its undo delay, not for the re-queue lease."""
    settings.MAILSITE_UNDO_SEND_SECONDS = 10
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    message = send(mailbox, committed)
    delivery = OutboundDelivery.objects.get(message_id=message.id)
    assert (delivery.status, delivery.enqueued_at) == (OutboundDelivery.Status.QUEUED, None)
    OutboundDelivery.objects.filter(pk=delivery.pk).update(send_after=timezone.now() - timedelta(seconds=1))

    call_command("runoutbound", "--once", stdout=StringIO())

    assert OutboundDelivery.objects.get(pk=delivery.pk).status == OutboundDelivery.Status.SENT
    assert [m.subject for m in mail.outbox] == ["Report"]
