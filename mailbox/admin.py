"""Admin of mailboxes, their messages and labels.

Messages and everything derived from them (participants, bodies, attachments, label rows) are
view-only: thread summaries and label counts must stay consistent with them, and only the services
keep them so. Mailboxes are created with ``mailbox_create`` (the ``createmailbox`` command), which
also creates the user and the system labels, so the admin neither adds nor deletes them.
"""

from django import forms
from django.contrib import admin
from django.core.validators import validate_email
from django.db.models import QuerySet
from django.http import HttpRequest

from delivery.admin import InboundReceiptAdmin
from delivery.models import InboundReceipt
from mailbox.models import (
    Alias,
    Attachment,
    Contact,
    Domain,
    Draft,
    DraftAttachment,
    Label,
    Mailbox,
    MergedThread,
    Message,
    MessageBody,
    MessageLabel,
    Participant,
    RemoteImageSender,
    ThreadLabel,
)
from mailbox.services.ingest import inbound_reprocess
from mailsite.admin import BigTableAdminMixin, RecentValuesFilter, ViewOnlyAdminMixin, size_human


class DomainForm(forms.ModelForm):
    class Meta:
        model = Domain
        fields = ("name", "is_active")

    def clean_name(self) -> str:
        return self.cleaned_data["name"].strip().lower().rstrip(".")


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    form = DomainForm
    list_display = ("name", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name",)

    def get_readonly_fields(self, request: HttpRequest, obj: Domain | None = None) -> tuple[str, ...]:
        """A domain's name is fixed once it exists: mailbox and alias addresses are built on it."""
        return ("name", "created_at") if obj else ("created_at",)


class AliasForm(forms.ModelForm):
    """Checks what the schema cannot: the address is in the chosen domain and is no mailbox's own."""

    class Meta:
        model = Alias
        fields = ("address", "domain")

    def clean_address(self) -> str:
        address = self.cleaned_data["address"].strip().lower()
        validate_email(address)
        if Mailbox.objects.filter(address=address).exists():
            raise forms.ValidationError("A mailbox already has this address.")
        return address

    def clean(self) -> dict:
        cleaned = super().clean()
        address, domain = cleaned.get("address"), cleaned.get("domain")
        if address and domain and address.rsplit("@", 1)[1] != domain.name:
            self.add_error("domain", f"The address is not in {domain.name}.")
        return cleaned


class AliasInline(admin.TabularInline):
    model = Alias
    form = AliasForm
    autocomplete_fields = ("domain",)
    extra = 0


@admin.register(Mailbox)
class MailboxAdmin(admin.ModelAdmin):
    list_display = ("address", "display_name", "domain", "user", "created_at")
    list_select_related = ("domain", "user")
    list_filter = ("domain", "user__is_active")
    search_fields = ("address", "display_name")
    date_hierarchy = "created_at"
    fields = ("address", "display_name", "signature", "user", "domain", "local_part", "created_at")
    readonly_fields = ("address", "user", "domain", "local_part", "created_at")
    inlines = (AliasInline,)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Mailbox | None = None) -> bool:
        return False


@admin.register(Alias)
class AliasAdmin(admin.ModelAdmin):
    form = AliasForm
    list_display = ("address", "mailbox", "domain", "created_at")
    list_select_related = ("mailbox", "domain")
    list_filter = ("domain",)
    search_fields = ("address", "=mailbox__address")
    fields = ("address", "mailbox", "domain", "created_at")
    readonly_fields = ("created_at",)
    raw_id_fields = ("mailbox",)
    autocomplete_fields = ("domain",)


@admin.register(Contact)
class ContactAdmin(BigTableAdminMixin, ViewOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("address", "display_name", "mailbox", "times_contacted", "last_contacted_at")
    list_select_related = ("mailbox",)
    list_filter = (("last_contacted_at", admin.DateFieldListFilter),)
    search_fields = ("=address", "display_name", "=mailbox__address")
    raw_id_fields = ("mailbox",)


@admin.register(RemoteImageSender)
class RemoteImageSenderAdmin(BigTableAdminMixin, admin.ModelAdmin):
    list_display = ("address", "mailbox", "created_at")
    list_select_related = ("mailbox",)
    search_fields = ("=address", "=mailbox__address")
    raw_id_fields = ("mailbox",)


@admin.register(MergedThread)
class MergedThreadAdmin(BigTableAdminMixin, ViewOnlyAdminMixin, admin.ModelAdmin):
    """Where an old conversation address leads: written by merges, read-only for staff."""

    list_display = ("thread_id", "merged_into", "mailbox", "created_at")
    list_select_related = ("mailbox",)
    search_fields = ("=thread_id", "=merged_into", "=mailbox__address")
    raw_id_fields = ("mailbox",)


class ParticipantInline(ViewOnlyAdminMixin, admin.TabularInline):
    model = Participant
    fields = ("role", "position", "address", "display_name")
    ordering = ("role", "position")
    extra = 0


class AttachmentInline(ViewOnlyAdminMixin, admin.TabularInline):
    model = Attachment
    fields = ("position", "filename", "content_type", "size", "is_inline", "content_id", "blob")
    ordering = ("position",)
    extra = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[Attachment]:
        return super().get_queryset(request).select_related("blob")


@admin.register(Message)
class MessageAdmin(BigTableAdminMixin, ViewOnlyAdminMixin, admin.ModelAdmin):
    """View-only, flags included: changing a message would leave its thread summary stale."""

    list_display = (
        "id",
        "subject",
        "from_address",
        "mailbox",
        "date",
        "is_read",
        "is_starred",
        "spam_verdict",
        size_human,
        "source_tag",
    )
    list_select_related = ("mailbox",)
    list_filter = (
        "spam_verdict",
        "is_read",
        "is_starred",
        "is_draft",
        "has_attachments",
        "thread_reason",
        ("received_at", admin.DateFieldListFilter),
    )
    search_fields = ("subject", "=from_address", "=message_id")
    raw_id_fields = ("mailbox", "thread", "blob", "receipt")
    exclude = ("size",)  # shown in human units
    readonly_fields = (size_human,)
    inlines = (ParticipantInline, AttachmentInline)


@admin.register(Participant)
class ParticipantAdmin(BigTableAdminMixin, ViewOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("address", "display_name", "role", "message", "mailbox")
    list_select_related = ("message", "mailbox")
    list_filter = ("role",)
    search_fields = ("=address", "=message__message_id")
    raw_id_fields = ("mailbox", "message")


@admin.register(MessageBody)
class MessageBodyAdmin(BigTableAdminMixin, ViewOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("message", "mailbox")
    list_select_related = ("message", "mailbox")
    search_fields = ("=message__message_id",)
    raw_id_fields = ("message", "mailbox")

    def get_queryset(self, request: HttpRequest) -> QuerySet[MessageBody]:
        """The bodies are loaded by the detail page alone, never for a list of rows."""
        return super().get_queryset(request).defer("text", "html")


class ContentTypeFilter(RecentValuesFilter):
    title = "content type"
    parameter_name = "content_type"


@admin.register(Attachment)
class AttachmentAdmin(BigTableAdminMixin, ViewOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("filename", "content_type", size_human, "is_inline", "message", "mailbox")
    list_select_related = ("message", "mailbox")
    list_filter = ("is_inline", ContentTypeFilter)
    search_fields = ("filename", "=message__message_id")
    raw_id_fields = ("mailbox", "message", "blob")
    exclude = ("size",)  # shown in human units
    readonly_fields = (size_human,)


class LabelKindFilter(admin.SimpleListFilter):
    title = "kind"
    parameter_name = "kind"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("system", "System folder"), ("user", "User label")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Label]) -> QuerySet[Label]:
        if self.value() == "system":
            return queryset.exclude(role="")
        if self.value() == "user":
            return queryset.filter(role="")
        return queryset


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    """User labels can be added, edited and deleted; system folders only renamed, recoloured or moved.

    Deleting a label that holds messages is refused too: the cascade would delete view-only
    label rows, and would list every one of them on the confirmation page.
    """

    list_display = ("name", "mailbox", "role", "colour", "position")
    list_select_related = ("mailbox",)
    list_filter = ("role", LabelKindFilter)
    search_fields = ("name", "=mailbox__address")
    fields = ("mailbox", "name", "role", "colour", "position", "created_at")
    raw_id_fields = ("mailbox",)

    def get_readonly_fields(self, request: HttpRequest, obj: Label | None = None) -> tuple[str, ...]:
        """System roles are set by ``mailbox_create`` alone; a label never moves to another mailbox."""
        return ("mailbox", "role", "created_at") if obj else ("role", "created_at")

    def has_delete_permission(self, request: HttpRequest, obj: Label | None = None) -> bool:
        if obj is not None and obj.is_system:
            return False
        return super().has_delete_permission(request, obj)


@admin.register(MessageLabel)
class MessageLabelAdmin(BigTableAdminMixin, ViewOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("message", "label", "mailbox")
    list_select_related = ("message", "label", "mailbox")
    list_filter = ("label__role",)
    search_fields = ("=mailbox__address", "=message__message_id")
    raw_id_fields = ("mailbox", "message", "label")


class UnreadFilter(admin.SimpleListFilter):
    title = "unread"
    parameter_name = "unread"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "With unread messages"), ("no", "All read")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ThreadLabel]) -> QuerySet[ThreadLabel]:
        if self.value() == "yes":
            return queryset.filter(unread_count__gt=0)
        if self.value() == "no":
            return queryset.filter(unread_count=0)
        return queryset


@admin.register(ThreadLabel)
class ThreadLabelAdmin(BigTableAdminMixin, ViewOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("thread", "label", "mailbox", "message_count", "unread_count", "last_message_at")
    list_select_related = ("thread", "label", "mailbox")
    list_filter = (UnreadFilter, "label__role", ("last_message_at", admin.DateFieldListFilter))
    search_fields = ("=mailbox__address", "thread__id__exact")
    raw_id_fields = ("mailbox", "label", "thread")


# The transport's receipt admin gains the action that needs the mailbox pipeline (delivery
# cannot import mailbox, so the action is added here, on top).
admin.site.unregister(InboundReceipt)


@admin.register(InboundReceipt)
class ReceiptAdmin(InboundReceiptAdmin):
    actions = ["reprocess"]

    @admin.action(description="Reprocess the selected failed or quarantined receipts")
    def reprocess(self, request: HttpRequest, queryset: QuerySet[InboundReceipt]) -> None:
        queued = inbound_reprocess(receipt_ids=list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"Queued {queued} receipt(s) for processing.")


class DraftAttachmentInline(ViewOnlyAdminMixin, admin.TabularInline):
    model = DraftAttachment
    fields = ("filename", "content_type", "size", "blob")
    raw_id_fields = ("blob",)
    extra = 0


@admin.register(Draft)
class DraftAdmin(BigTableAdminMixin, ViewOnlyAdminMixin, admin.ModelAdmin):
    """Drafts are the user's own unsent text: staff may look (support), the services write."""

    list_display = ("subject", "mailbox", "mode", "version", "updated_at")
    list_select_related = ("mailbox",)
    search_fields = ("=mailbox__address", "subject")
    raw_id_fields = ("mailbox", "thread", "reply_to", "forward_of")
    inlines = (DraftAttachmentInline,)


@admin.register(DraftAttachment)
class DraftAttachmentAdmin(BigTableAdminMixin, ViewOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("filename", "content_type", "size", "draft", "mailbox")
    list_select_related = ("draft", "mailbox")
    search_fields = ("=mailbox__address", "filename")
    raw_id_fields = ("mailbox", "draft", "blob")
