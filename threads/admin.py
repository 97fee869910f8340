"""Admin of threads: view-only, since summaries and Message-ID maps are derived by the services.

A thread's messages are listed by the message admin filtered on ``?thread=<id>``; a mailbox's
threads by this changelist filtered on ``?mailbox_id=<id>`` (both served by an index).
"""

from django.contrib import admin

from mailsite.admin import BigTableAdminMixin, ViewOnlyAdminMixin
from threads.models import Thread, ThreadMessageId


class ThreadMessageIdInline(ViewOnlyAdminMixin, admin.TabularInline):
    model = ThreadMessageId
    fields = ("message_id", "seen", "sender", "is_bulk")
    extra = 0


@admin.register(Thread)
class ThreadAdmin(BigTableAdminMixin, ViewOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "subject",
        "mailbox_id",
        "message_count",
        "unread_count",
        "starred_count",
        "has_attachments",
        "is_manual",
        "last_message_at",
    )
    list_filter = (
        "has_attachments",
        "is_manual",
        ("list_id", admin.EmptyFieldListFilter),
        ("last_message_at", admin.DateFieldListFilter),
    )
    search_fields = ("subject", "=list_id", "mailbox_id__exact")
    inlines = (ThreadMessageIdInline,)


@admin.register(ThreadMessageId)
class ThreadMessageIdAdmin(BigTableAdminMixin, ViewOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("message_id", "mailbox_id", "thread", "seen", "sender", "is_bulk")
    list_select_related = ("thread",)
    list_filter = ("seen", "is_bulk")
    search_fields = ("=message_id",)
    raw_id_fields = ("thread",)
