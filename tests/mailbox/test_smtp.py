"""The SMTP listener, spoken to by a real SMTP client over a socket.

The listener runs in its own thread and does its database work in worker threads, so the tests
commit (transactional database) and the threads close their connections after each call.
"""

import smtplib
import socket
from email.message import EmailMessage

import pytest
from django.db import connections

from delivery.models import InboundReceipt
from delivery.selectors import blob_read
from mailbox.management.commands.runsmtpd import smtp_listener
from mailbox.models import Alias, Message
from tests.mail import raw_message

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 20_000
RAW = raw_message("smtp-1@example.org", "Over SMTP").replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def listener(mailbox, monkeypatch):
    # Each worker-thread connection is closed after its call, or the test database could not be
    # dropped at the end of the run.
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    controller = smtp_listener(host="127.0.0.1", port=free_port(), max_message_bytes=LIMIT)
    controller.start()
    yield controller
    controller.stop()


@pytest.fixture
def client(listener):
    with smtplib.SMTP("127.0.0.1", listener.port, timeout=10) as smtp:
        smtp.ehlo("client.example.org")
        yield smtp


def test_accepted_mail_is_stored_exactly_then_delivered(client, mailbox):
    refused = client.sendmail("carol@example.org", ["Alice@Example.test"], RAW)

    assert refused == {}
    receipt = InboundReceipt.objects.get()
    assert receipt.source == InboundReceipt.Source.SMTP
    assert (receipt.envelope_sender, receipt.envelope_recipients) == ("carol@example.org", ["alice@example.test"])
    assert receipt.metadata["smtp"]["helo"] == "client.example.org"
    assert blob_read(blob=receipt.blob) == RAW
    assert receipt.status == InboundReceipt.Status.PARSED
    message = Message.objects.get(mailbox=mailbox)
    assert (message.subject, message.source_tag) == ("Over SMTP", "smtp")


def test_the_reply_to_data_comes_after_the_commit(client):
    client.mail("carol@example.org")
    client.rcpt("alice@example.test")
    code, reply = client.data(RAW)

    assert code == 250
    assert b"queued as" in reply
    assert InboundReceipt.objects.count() == 1


def test_a_bounce_with_the_null_sender_is_accepted(client):
    client.sendmail("", ["alice@example.test"], RAW)

    assert InboundReceipt.objects.get().envelope_sender == ""


def test_relaying_to_a_foreign_domain_is_refused(client):
    client.mail("carol@example.org")
    code, reply = client.rcpt("someone@elsewhere.example")

    assert code == 550
    assert b"relaying denied" in reply
    client.rset()
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        client.sendmail("carol@example.org", ["victim@gmail.com"], RAW)
    assert refused.value.recipients["victim@gmail.com"][0] == 550
    assert not InboundReceipt.objects.exists()


def test_unknown_local_user_is_refused(client):
    client.mail("carol@example.org")
    code, reply = client.rcpt("nobody@example.test")

    assert code == 550
    assert b"no such mailbox" in reply


def test_only_accepted_recipients_reach_the_envelope(client, mailbox, other_mailbox):
    Alias.objects.create(mailbox=other_mailbox, domain=other_mailbox.domain, address="robert@example.test")

    refused = client.sendmail(
        "carol@example.org", ["alice@example.test", "robert@example.test", "nobody@example.test"], RAW
    )

    assert set(refused) == {"nobody@example.test"}
    receipt = InboundReceipt.objects.get()
    assert receipt.envelope_recipients == ["alice@example.test", "robert@example.test"]
    assert set(Message.objects.values_list("mailbox_id", flat=True)) == {mailbox.id, other_mailbox.id}


def test_size_is_advertised_and_a_declared_oversize_is_refused_before_data(client):
    assert client.has_extn("size")
    assert int(client.esmtp_features["size"]) == LIMIT

    big = RAW + b"x" * LIMIT + b"\r\n"
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        client.sendmail("carol@example.org", ["alice@example.test"], big)
    assert refused.value.smtp_code == 552


def test_an_undeclared_oversize_is_refused_after_data(client):
    client.mail("carol@example.org")  # no SIZE parameter
    client.rcpt("alice@example.test")
    code, _ = client.data(RAW + (b"y" * 998 + b"\r\n") * (LIMIT // 1000 + 1))

    assert code == 552
    assert not InboundReceipt.objects.exists()


def test_a_resend_of_the_same_message_doubles_nothing(listener, mailbox):
    for _ in range(3):
        with smtplib.SMTP("127.0.0.1", listener.port, timeout=10) as smtp:
            assert smtp.sendmail("carol@example.org", ["alice@example.test"], RAW) == {}

    assert InboundReceipt.objects.count() == 1
    assert Message.objects.filter(mailbox=mailbox).count() == 1


def test_the_same_bytes_to_another_envelope_is_another_arrival(client, other_mailbox):
    client.sendmail("carol@example.org", ["alice@example.test"], RAW)
    client.sendmail("carol@example.org", ["bob@example.test"], RAW)

    assert InboundReceipt.objects.count() == 2
    assert InboundReceipt.objects.values("blob").distinct().count() == 1


def test_a_failure_on_our_side_is_temporary_and_stores_nothing(client, settings, tmp_path):
    not_a_directory = tmp_path / "in-the-way"
    not_a_directory.write_text("a file where the mail storage should be")
    settings.STORAGES = {
        **settings.STORAGES,
        "mail": {"BACKEND": "delivery.storage.DurableFileSystemStorage", "OPTIONS": {"location": not_a_directory}},
    }

    client.mail("carol@example.org")
    client.rcpt("alice@example.test")
    code, _ = client.data(RAW)

    assert code == 451
    assert not InboundReceipt.objects.exists()


def test_a_real_client_message_with_a_leading_dot_line_keeps_its_bytes(client):
    msg = EmailMessage()
    msg["From"] = "carol@example.org"
    msg["To"] = "alice@example.test"
    msg["Subject"] = "dots"
    msg["Message-ID"] = "<dots@example.org>"
    msg.set_content(".hidden line\n..two dots\n")
    raw = msg.as_bytes().replace(b"\n", b"\r\n")

    client.sendmail("carol@example.org", ["alice@example.test"], raw)

    assert blob_read(blob=InboundReceipt.objects.get().blob) == raw
