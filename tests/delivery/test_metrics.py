"""The inbound counters, read through /metrics as Prometheus would, after real pipeline work."""

import pytest
from django.core.files.storage import storages
from prometheus_client.parser import text_string_to_metric_families

from delivery.models import InboundReceipt
from mailbox.importing import mail_import, mail_sources_find
from mailbox.services.ingest import inbound_accept
from mailbox.tasks import receipt_process_task
from mailsite.celery import app
from tests.mail import raw_message

TOKEN = "scraper-token-0123456789"


@pytest.fixture(autouse=True)
def _token(settings) -> None:
    settings.MAILSITE_METRICS_TOKEN = TOKEN


def _scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def _delta(before: dict, after: dict, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


@pytest.mark.django_db
def test_anonymous_gets_401_and_a_user_who_is_not_staff_403(client, mailbox):
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token").status_code == 401
    client.force_login(mailbox.user)
    assert client.get("/metrics").status_code == 403


@pytest.mark.django_db
def test_staff_and_the_scraper_token_read_the_counters(admin_client, client):
    assert b"mailsite_inbound_received_total" in admin_client.get("/metrics").content
    assert b"mailsite_inbound_parsed_total" in _scrape_raw(client)


def _scrape_raw(client) -> bytes:
    return client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content


@pytest.mark.django_db
def test_without_a_token_setting_no_bearer_token_is_accepted(client, settings):
    settings.MAILSITE_METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401


@pytest.mark.django_db
def test_received_parsed_duplicate_and_quarantined_are_counted(client, mailbox, django_capture_on_commit_callbacks):
    before = _scrape(client)
    raw = raw_message("counted@example.org", "Counted", to="alice@example.test")
    for _ in range(2):  # the second is an ESP's retry of the same event
        with django_capture_on_commit_callbacks(execute=True):
            inbound_accept(
                source="esp_webhook", esp="mailgun", raw=raw, event_id="evt-1", envelope_recipients=[mailbox.address]
            )
    with django_capture_on_commit_callbacks(execute=True):
        inbound_accept(source="smtp", raw=b"\x00\x01 not mail", envelope_recipients=[mailbox.address])
    after = _scrape(client)

    assert _delta(before, after, "mailsite_inbound_received_total", source="esp_webhook") == 1
    assert _delta(before, after, "mailsite_inbound_duplicates_total", source="esp_webhook") == 1
    assert _delta(before, after, "mailsite_inbound_received_total", source="smtp") == 1
    assert _delta(before, after, "mailsite_inbound_parsed_total") == 1
    assert _delta(before, after, "mailsite_inbound_quarantined_total") == 1


@pytest.mark.django_db
def test_a_bulk_import_counts_each_message_and_a_rerun_counts_duplicates(
    client, mailbox, tmp_path, django_capture_on_commit_callbacks
):
    folder = tmp_path / "export"  # apart from the test's mail storage, also under tmp_path
    folder.mkdir()
    for number in range(3):
        (folder / f"{number}.eml").write_bytes(raw_message(f"import-{number}@example.org", f"Imported {number}"))
    before = _scrape(client)
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            mail_import(mailbox=mailbox, sources=mail_sources_find([folder])[0])
    after = _scrape(client)

    assert _delta(before, after, "mailsite_inbound_received_total", source="import") == 3
    assert _delta(before, after, "mailsite_inbound_duplicates_total", source="import") == 3
    assert _delta(before, after, "mailsite_inbound_parsed_total") == 3


@pytest.fixture
def _eager_retries_run_through():
    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = True


@pytest.mark.django_db
@pytest.mark.usefixtures("_eager_retries_run_through")
def test_retries_and_the_final_failure_are_counted(client, mailbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):  # stored, its task not run yet
        receipt = inbound_accept(
            source="smtp", raw=raw_message("lost@example.org", "Lost bytes"), envelope_recipients=[mailbox.address]
        ).receipt
    storages["mail"].delete(receipt.blob.storage_key)  # the object store has lost it
    before = _scrape(client)

    receipt_process_task.apply(args=[receipt.id])
    after = _scrape(client)

    receipt.refresh_from_db()
    assert receipt.status == InboundReceipt.Status.FAILED
    # Attempts: the batch, the receipt's first try alone, then the retries.
    assert _delta(before, after, "mailsite_inbound_retried_total") == receipt.attempts - 2
    assert _delta(before, after, "mailsite_inbound_failed_total") == 1
