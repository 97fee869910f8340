"""Admin of the transport layer: blobs, inbound receipts, outbound deliveries, suppressions.

Everything but suppressions is view-only: blobs are immutable, and receipts, deliveries and
their events change only through the pipeline; the retry action calls its service.
"""

from django import forms
from django.contrib import admin
from django.core.validators import validate_email
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.text import Truncator

from delivery.models import Blob, DeliveryEvent, InboundReceipt, OutboundDelivery, Suppression
from delivery.outbound import outbound_retry
from mailsite.admin import BigTableAdminMixin, RecentValuesFilter, ViewOnlyAdminMixin, size_human

ERROR_PREVIEW_CHARS = 80


class EspFilter(RecentValuesFilter):
    title = "ESP"
    parameter_name = "esp"


def _error_preview(error: str) -> str:
    return Truncator(error).chars(ERROR_PREVIEW_CHARS)


@admin.register(Blob)
class BlobAdmin(BigTableAdminMixin, ViewOnlyAdminMixin, admin.ModelAdmin):
    """Immutable bytes: a database trigger refuses changes to their content columns."""

    list_display = ("sha256", size_human, "storage_key", "created_at")
    list_filter = (("created_at", admin.DateFieldListFilter),)
    # The unique index on sha256 serves an exact search; a prefix would scan the table.
    search_fields = ("sha256__exact",)
    exclude = ("size",)  # shown in human units
    readonly_fields = (size_human,)


class UnknownRecipientFilter(admin.SimpleListFilter):
    """Receipts with any unknown local recipient, or with a given one: the addresses offered are
    those of the newest such receipts (a partial index holds just these rows)."""

    title = "unknown recipient"
    parameter_name = "unknown_recipient"
    ANY = "__any__"
    sample = 1000

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        recent = _with_unknown_recipients(model_admin.model._default_manager.all()).order_by("-received_at")
        addresses = {a for row in recent.values_list("unknown_recipients", flat=True)[: self.sample] for a in row}
        if self.value() and self.value() != self.ANY:
            addresses.add(self.value())
        return [(self.ANY, "Any"), *((address, address) for address in sorted(addresses))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if not self.value():
            return queryset
        queryset = _with_unknown_recipients(queryset)
        if self.value() == self.ANY:
            return queryset
        return queryset.filter(unknown_recipients__contains=[self.value()])


def _with_unknown_recipients(queryset: QuerySet) -> QuerySet:
    # Spelled as the partial index's condition, so PostgreSQL can use it.
    return queryset.exclude(unknown_recipients=[])


@admin.register(InboundReceipt)
class InboundReceiptAdmin(BigTableAdminMixin, ViewOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "status",
        "source",
        "esp",
        "received_at",
        "attempts",
        "envelope_sender",
        "unknown_recipients_preview",
        "last_error_preview",
    )
    list_filter = (
        "status",
        "source",
        EspFilter,
        UnknownRecipientFilter,
        ("received_at", admin.DateFieldListFilter),
    )
    search_fields = ("event_id__exact", "=envelope_sender", "correlation_id__exact")
    raw_id_fields = ("blob",)

    @admin.display(description="last error")
    def last_error_preview(self, obj: InboundReceipt) -> str:
        return _error_preview(obj.last_error)

    @admin.display(description="unknown recipients")
    def unknown_recipients_preview(self, obj: InboundReceipt) -> str:
        return _error_preview(", ".join(obj.unknown_recipients))


class DeliveryEventInline(ViewOnlyAdminMixin, admin.TabularInline):
    model = DeliveryEvent
    fields = ("occurred_at", "event_type", "esp", "mta_response", "description")
    ordering = ("occurred_at", "id")
    extra = 0


@admin.register(OutboundDelivery)
class OutboundDeliveryAdmin(BigTableAdminMixin, ViewOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "recipient",
        "status",
        "envelope_sender",
        "mailbox_id",
        "message_id",
        "esp",
        "attempts",
        "send_after",
        "updated_at",
        "last_error_preview",
    )
    list_filter = ("status", EspFilter, ("updated_at", admin.DateFieldListFilter))
    search_fields = ("=recipient", "esp_message_id__exact", "message_id__exact")
    raw_id_fields = ("blob",)
    # The error history: every attempt's failure is an event with the server's answer.
    inlines = (DeliveryEventInline,)
    actions = ["retry"]

    @admin.action(description="Retry the selected dead-lettered, failed or interrupted deliveries")
    def retry(self, request: HttpRequest, queryset: QuerySet[OutboundDelivery]) -> None:
        retried = outbound_retry(delivery_ids=list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"Queued {len(retried)} delivery(ies) to be sent again, each as a new attempt.")

    @admin.display(description="last error")
    def last_error_preview(self, obj: OutboundDelivery) -> str:
        return _error_preview(obj.last_error)


@admin.register(DeliveryEvent)
class DeliveryEventAdmin(BigTableAdminMixin, ViewOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "event_type", "delivery", "esp", "occurred_at", "mailbox_id", "mta_response_preview")
    list_select_related = ("delivery",)
    list_filter = ("event_type", EspFilter, ("occurred_at", admin.DateFieldListFilter))
    search_fields = ("esp_event_id__exact", "delivery__id__exact", "=delivery__recipient")
    raw_id_fields = ("delivery",)

    @admin.display(description="MTA response")
    def mta_response_preview(self, obj: DeliveryEvent) -> str:
        return _error_preview(obj.mta_response)


class SuppressionForm(forms.ModelForm):
    class Meta:
        model = Suppression
        fields = ("address", "reason", "detail")

    def clean_address(self) -> str:
        """Stored lowercase, like every other address column."""
        address = self.cleaned_data["address"].strip().lower()
        validate_email(address)
        return address


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    """Staff add suppressions and lift them by deleting; a suppression itself is never edited."""

    form = SuppressionForm
    list_display = ("address", "reason", "source", "created_at")
    list_filter = ("reason",)
    search_fields = ("address",)
    date_hierarchy = "created_at"
    fields = ("address", "reason", "detail", "source", "created_at")
    readonly_fields = ("source", "created_at")

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, str]:
        return {"reason": Suppression.Reason.MANUAL}

    def save_model(self, request: HttpRequest, obj: Suppression, form: forms.ModelForm, change: bool) -> None:
        obj.source = "admin"
        super().save_model(request, obj, form, change)
