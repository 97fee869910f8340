"""The admin of every app: every registered model renders, searches and filters; read-only stays read-only.

The generic tests walk ``admin.site._registry``, so a model registered later without test data,
or whose pages fail to render, fails here without anyone listing it by hand.
"""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Group
from django.db import connection
from django.shortcuts import resolve_url
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from delivery.models import Blob, DeliveryEvent, InboundReceipt, OutboundDelivery, Suppression
from delivery.services import blob_store, inbound_receipt_create
from mailbox.admin import AliasForm
from mailbox.models import Alias, Contact, Domain, Draft, Label, Mailbox, Message
from mailbox.selectors_drafts import source_message_get
from mailbox.services import domain_get_or_create, message_import_raw
from mailbox.services.conversations import thread_merge
from mailbox.services.drafts import draft_create
from mailbox.services.images import remote_images_always_for_sender
from mailbox.services.receiving import receipt_fail
from mailsite.admin import EstimatedCountPaginator
from mailsite.models import DomainEvent
from tests.mail import raw_message

OUR_APPS = {"mailsite", "threads", "delivery", "mailbox", "campaigns"}
REGISTERED = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)
REGISTERED_IDS = [model._meta.label for model, _ in REGISTERED]
# One word and one number: every search field, text or integer, must take both.
SEARCH_TERMS = ("alice", "1")


def _receipt(*, status: str, event_id: str, last_error: str = "") -> InboundReceipt:
    return InboundReceipt.objects.create(
        source=InboundReceipt.Source.ESP_WEBHOOK,
        esp="mailgun",
        event_id=event_id,
        blob=blob_store(data=f"raw of {event_id}".encode()),
        envelope_sender="carol@example.org",
        envelope_recipients=["alice@example.test"],
        received_at=timezone.now(),
        status=status,
        last_error=last_error,
    )


def _outbound(*, mailbox, message: Message, recipient: str) -> OutboundDelivery:
    delivery = OutboundDelivery.objects.create(
        mailbox_id=mailbox.id,
        message_id=message.id,
        blob=message.blob,
        envelope_sender=mailbox.address,
        recipient=recipient,
        status=OutboundDelivery.Status.DELIVERED,
        send_after=timezone.now(),
        esp="postmark",
        esp_message_id=f"pm-{recipient}",
    )
    DeliveryEvent.objects.create(
        mailbox_id=mailbox.id,
        delivery=delivery,
        event_type=DeliveryEvent.Type.DELIVERED,
        esp="postmark",
        esp_event_id=f"ev-{recipient}",
        occurred_at=timezone.now(),
        mta_response="250 2.0.0 OK",
    )
    return delivery


def _add_data(mailbox, round_: int) -> None:
    """A bit of every table. Rows without a service yet (receipts, deliveries...) are made with the ORM."""
    first = message_import_raw(
        mailbox=mailbox,
        raw=raw_message(f"a{round_}@x", f"Invoice {round_}", attachment=f"%PDF {round_}".encode()),
        source_tag="import",
    ).message
    message_import_raw(
        mailbox=mailbox,
        raw=raw_message(f"b{round_}@x", f"Re: Invoice {round_}", in_reply_to=f"a{round_}@x"),
        source_tag="smtp",
    )
    _receipt(status=InboundReceipt.Status.PARSED, event_id=f"parsed-{round_}")
    _receipt(status=InboundReceipt.Status.FAILED, event_id=f"failed-{round_}", last_error="ParseError: no headers")
    _outbound(mailbox=mailbox, message=first, recipient=f"dave{round_}@example.org")
    Suppression.objects.create(address=f"gone{round_}@example.org", reason=Suppression.Reason.HARD_BOUNCE)
    Alias.objects.create(mailbox=mailbox, domain=mailbox.domain, address=f"alias{round_}@example.test")
    Contact.objects.create(mailbox=mailbox, address=f"carol{round_}@example.org", times_contacted=1)
    Label.objects.create(mailbox=mailbox, name=f"Projects {round_}", colour="#336699", position=10 + round_)
    Group.objects.create(name=f"support {round_}")
    draft_create(
        mailbox=mailbox, mode=Draft.Mode.FORWARD, source=source_message_get(mailbox=mailbox, message_id=first.id)
    )

    remote_images_always_for_sender(mailbox=mailbox, address=f"news{round_}@example.org")
    other = message_import_raw(
        mailbox=mailbox, raw=raw_message(f"m{round_}@x", f"Minutes {round_}"), source_tag="import"
    ).message
    thread_merge(mailbox=mailbox, thread_ids=[other.thread_id], into_thread_id=first.thread_id)  # a MergedThread row


@pytest.fixture
def admin_data(mailbox, other_mailbox):
    # A second domain, so that the filters on domains have a choice to offer.
    domain_get_or_create(name="example.org")
    _add_data(mailbox, round_=1)
    message_import_raw(mailbox=other_mailbox, raw=raw_message("c@x", "Hello Bob"), source_tag="smtp")


def _changelist_url(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def _url(model, view: str, obj) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=[quote(obj.pk)])


def test_every_model_of_our_apps_is_registered():
    ours = [m for m in apps.get_models() if m._meta.app_label in OUR_APPS]

    assert [m._meta.label for m in ours if m not in admin.site._registry] == []


@pytest.mark.django_db
@pytest.mark.parametrize(("model", "model_admin"), REGISTERED, ids=REGISTERED_IDS)
def test_changelist_and_detail_render(admin_client, admin_data, model, model_admin):
    obj = model._default_manager.order_by("pk").first()
    assert obj is not None, f"no {model._meta.label} in the test data: add some to _add_data"

    assert admin_client.get(_changelist_url(model)).status_code == 200
    assert admin_client.get(_url(model, "change", obj)).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(("model", "model_admin"), REGISTERED, ids=REGISTERED_IDS)
def test_search_and_every_filter_option_work(admin_client, admin_data, model, model_admin):
    url = _changelist_url(model)
    for term in SEARCH_TERMS if model_admin.search_fields else ():
        assert admin_client.get(url, {"q": term}).status_code == 200, term

    changelist = admin_client.get(url).context["cl"]
    specs = [spec for spec in changelist.filter_specs if spec.has_output()]
    assert len(specs) == len(model_admin.list_filter), "a filter offers no choice: add data it can filter on"
    query_strings = [choice["query_string"] for spec in specs for choice in spec.choices(changelist)]
    for query_string in query_strings:
        # A rejected lookup redirects to ?e=1 instead of answering 200.
        assert admin_client.get(url + query_string).status_code == 200, query_string


@pytest.mark.django_db
def test_changelists_make_as_many_queries_for_more_rows(admin_client, mailbox, other_mailbox):
    """No N+1: the query count of a page does not grow with its rows."""

    def query_counts() -> dict[str, int]:
        counts = {}
        for model, _ in REGISTERED:
            with CaptureQueriesContext(connection) as queries:
                assert admin_client.get(_changelist_url(model)).status_code == 200
            counts[model._meta.label] = len(queries)
        return counts

    _add_data(mailbox, round_=1)
    few = query_counts()
    for round_ in (2, 3):
        _add_data(mailbox, round_=round_)

    assert query_counts() == few


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/admin/", "/admin/mailbox/message/", "/admin/delivery/inboundreceipt/"])
def test_non_staff_users_are_sent_to_the_admin_login(client, mailbox, path):
    client.force_login(mailbox.user)

    response = client.get(path)

    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert (location.path, parse_qs(location.query)["next"]) == (reverse("admin:login"), [path])


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/admin/", "/admin/mailbox/message/", "/admin/delivery/inboundreceipt/"])
def test_anonymous_users_are_sent_to_a_login_page(client, settings, path):
    """The admin index sends them to the admin login; LoginRequiredMiddleware sends the model pages,
    which are not marked @login_not_required, to the site's login, which then comes back here."""
    response = client.get(path)

    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path in {reverse("admin:login"), resolve_url(settings.LOGIN_URL)}
    assert parse_qs(location.query)["next"] == [path]


@pytest.mark.django_db
@pytest.mark.parametrize("model", [Blob, DomainEvent, Message], ids=lambda m: m.__name__)
def test_read_only_admins_refuse_add_change_and_delete(admin_client, admin_data, model):
    obj = model._default_manager.order_by("pk").first()
    before = model._default_manager.count()

    assert admin_client.post(_url(model, "change", obj), {}).status_code == 403
    assert admin_client.post(_url(model, "delete", obj), {"post": "yes"}).status_code == 403
    add_url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_add")
    assert admin_client.post(add_url, {}).status_code == 403
    assert model._default_manager.count() == before
    assert admin_client.get(_url(model, "change", obj)).status_code == 200


@pytest.mark.django_db
def test_message_admin_offers_no_editable_field(admin_client, admin_data):
    message = Message.objects.order_by("pk").first()

    response = admin_client.get(_url(Message, "change", message))

    assert not response.context["adminform"].form.fields
    assert b'name="is_read"' not in response.content


@pytest.mark.django_db
def test_receipts_filtered_by_failed_status_show_only_failed_ones(admin_client, admin_data):
    response = admin_client.get(_changelist_url(InboundReceipt), {"status__exact": "failed"})

    shown = list(response.context["cl"].result_list)
    assert [r.event_id for r in shown] == ["failed-1"]
    assert b"ParseError: no headers" in response.content


@pytest.mark.django_db
def test_receipts_filter_by_esp_offers_the_esps_in_use(admin_client, admin_data):
    changelist = admin_client.get(_changelist_url(InboundReceipt)).context["cl"]

    esp_filter = next(spec for spec in changelist.filter_specs if spec.title == "ESP")
    assert [display for _, display in esp_filter.lookup_choices] == ["mailgun"]


@pytest.mark.django_db
def test_receipts_search_by_event_id(admin_client, admin_data):
    response = admin_client.get(_changelist_url(InboundReceipt), {"q": "parsed-1"})

    assert [r.event_id for r in response.context["cl"].result_list] == ["parsed-1"]


@pytest.mark.django_db
def test_messages_search_by_subject_and_message_id(admin_client, admin_data):
    url = _changelist_url(Message)

    by_subject = admin_client.get(url, {"q": "invoice"}).context["cl"].result_list
    by_message_id = admin_client.get(url, {"q": "B1@x"}).context["cl"].result_list

    assert sorted(m.subject for m in by_subject) == ["Invoice 1", "Re: Invoice 1"]
    assert [m.message_id for m in by_message_id] == ["b1@x"]


@pytest.mark.django_db
def test_blob_admin_shows_size_in_human_units(admin_client, admin_data):
    blob = blob_store(data=b"x" * 1536)

    response = admin_client.get(_url(Blob, "change", blob))

    assert "1.5\xa0KB" in response.content.decode()


@pytest.mark.django_db
def test_staff_add_a_suppression_lowercased_and_lift_it(admin_client, db):
    response = admin_client.post(
        reverse("admin:delivery_suppression_add"), {"address": " Eve@Example.ORG ", "reason": "manual", "detail": ""}
    )

    assert response.status_code == 302
    suppression = Suppression.objects.get()
    assert (suppression.address, suppression.source) == ("eve@example.org", "admin")
    assert admin_client.post(_url(Suppression, "change", suppression), {"reason": "complaint"}).status_code == 403
    assert admin_client.post(_url(Suppression, "delete", suppression), {"post": "yes"}).status_code == 302
    assert not Suppression.objects.exists()


@pytest.mark.django_db
def test_suppressing_an_address_twice_is_a_form_error(admin_client, db):
    Suppression.objects.create(address="eve@example.org", reason=Suppression.Reason.COMPLAINT)

    response = admin_client.post(
        reverse("admin:delivery_suppression_add"), {"address": "EVE@example.org", "reason": "manual"}
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert Suppression.objects.count() == 1


@pytest.mark.django_db
def test_system_labels_cannot_be_deleted_user_labels_can(admin_client, mailbox):
    inbox = Label.objects.get(mailbox=mailbox, role=Label.Role.INBOX)
    projects = Label.objects.create(mailbox=mailbox, name="Projects")

    assert admin_client.post(_url(Label, "delete", inbox), {"post": "yes"}).status_code == 403
    assert admin_client.post(_url(Label, "delete", projects), {"post": "yes"}).status_code == 302
    assert list(Label.objects.filter(mailbox=mailbox, role="").values_list("name", flat=True)) == []


@pytest.mark.django_db
def test_deleting_a_user_who_owns_a_mailbox_is_refused(admin_client, admin_data, mailbox):
    """The cascade would reach the mailbox and its messages, whose admins refuse deletion."""
    response = admin_client.post(reverse("admin:auth_user_delete", args=[mailbox.user.pk]), {"post": "yes"})

    assert response.status_code == 403
    assert Mailbox.objects.filter(pk=mailbox.pk, user=mailbox.user).exists()


@pytest.mark.django_db
def test_staff_edit_a_mailbox_display_name_and_add_an_alias(admin_client, mailbox):
    response = admin_client.post(
        _url(Mailbox, "change", mailbox),
        {
            "display_name": "Alice Liddell",
            "aliases-TOTAL_FORMS": "1",
            "aliases-INITIAL_FORMS": "0",
            "aliases-0-address": "Sales@Example.test",
            "aliases-0-domain": str(mailbox.domain_id),
        },
    )

    assert response.status_code == 302
    mailbox.refresh_from_db()
    assert mailbox.display_name == "Alice Liddell"
    assert list(mailbox.aliases.values_list("address", flat=True)) == ["sales@example.test"]


@pytest.mark.django_db
def test_label_changelist_filters_by_role(admin_client, mailbox, other_mailbox):
    response = admin_client.get(_changelist_url(Label), {"role__exact": "inbox"})

    assert sorted(label.mailbox_id for label in response.context["cl"].result_list) == sorted(
        [mailbox.id, other_mailbox.id]
    )


@pytest.mark.django_db
def test_staff_add_a_domain_normalised(admin_client, db):
    response = admin_client.post(reverse("admin:mailbox_domain_add"), {"name": " Example.COM. ", "is_active": "on"})

    assert response.status_code == 302
    assert list(Domain.objects.values_list("name", flat=True)) == ["example.com"]


@pytest.mark.parametrize(
    ("address", "domain_name", "error_field"),
    [
        ("Info@Example.test", "example.test", None),
        ("info@elsewhere.test", "example.test", "domain"),
        ("alice@example.test", "example.test", "address"),
        ("not an address", "example.test", "address"),
    ],
)
@pytest.mark.django_db
def test_alias_form_lowercases_and_checks_the_address(mailbox, address, domain_name, error_field):
    domain = Domain.objects.get(name=domain_name)

    form = AliasForm(data={"address": address, "domain": domain.pk}, instance=Alias(mailbox=mailbox))

    if error_field is None:
        assert form.is_valid(), form.errors
        assert form.cleaned_data["address"] == "info@example.test"
    else:
        assert not form.is_valid()
        assert error_field in form.errors


@pytest.mark.django_db
def test_big_tables_are_counted_from_statistics_unless_filtered(admin_data, monkeypatch):
    monkeypatch.setattr(EstimatedCountPaginator, "exact_below", 1)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE delivery_inboundreceipt")
    receipts = InboundReceipt.objects.order_by("-pk")

    with CaptureQueriesContext(connection) as unfiltered:
        assert EstimatedCountPaginator(receipts, 10).count == 2
    with CaptureQueriesContext(connection) as filtered:
        assert EstimatedCountPaginator(receipts.filter(status="failed"), 10).count == 1

    assert "reltuples" in unfiltered.captured_queries[0]["sql"]
    assert "COUNT(" not in " ".join(q["sql"] for q in unfiltered.captured_queries)
    assert "COUNT(" in filtered.captured_queries[0]["sql"]


@pytest.mark.django_db
def test_tables_below_the_threshold_are_counted_exactly(admin_data):
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE mailsite_domainevent")

    assert EstimatedCountPaginator(DomainEvent.objects.order_by("-pk"), 10).count == DomainEvent.objects.count()


def test_staff_reprocess_a_failed_receipt_with_the_admin_action(
    admin_client, mailbox, django_capture_on_commit_callbacks
):
    receipt = inbound_receipt_create(
        source="smtp", raw=raw_message("reprocess@example.org", "Try again"), envelope_recipients=[mailbox.address]
    ).receipt
    receipt_fail(receipt_id=receipt.id, error="ParserBug: fixed since")

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            _changelist_url(InboundReceipt), {"action": "reprocess", "_selected_action": [receipt.pk]}, follow=True
        )

    assert "Queued 1 receipt(s) for processing." in response.content.decode()
    receipt.refresh_from_db()
    assert receipt.status == InboundReceipt.Status.PARSED
    assert Message.objects.filter(mailbox=mailbox, receipt=receipt).count() == 1
