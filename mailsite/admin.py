"""Admin of the domain event log, and the pieces every app's admin shares.

Most tables hold millions of rows. A changelist page view must never scan a whole table, so the
big tables' admins avoid ``COUNT(*)`` (``EstimatedCountPaginator``, ``show_full_result_count``),
``SELECT DISTINCT`` filters (``RecentValuesFilter`` instead of a plain list_filter on a free-text
column), facet counts and ``date_hierarchy`` (its year list is a ``SELECT DISTINCT`` over the
table): they filter dates with ``DateFieldListFilter``, whose choices need no query.
"""

from collections.abc import Callable
from functools import cached_property

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat

from mailsite.models import DomainEvent


class EstimatedCountPaginator(Paginator):
    """Counts an unfiltered big table from PostgreSQL's statistics instead of ``COUNT(*)``.

    The estimate (``pg_class.reltuples``, kept by autovacuum) is used only for an unfiltered list
    of at least ``exact_below`` rows; filtered, searched or smaller lists are counted exactly.
    An estimate can be off by a few percent, so the last pages may be empty or out of reach.
    """

    exact_below = 100_000

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if isinstance(queryset, QuerySet) and not queryset.query.where:
            estimate = table_row_estimate(queryset)
            if estimate >= self.exact_below:
                return estimate
        return super().count


def table_row_estimate(queryset: QuerySet) -> int:
    """The planner's row estimate of the queryset's table; -1 if the table was never analysed."""
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)", [queryset.model._meta.db_table]
        )
        row = cursor.fetchone()
    return row[0] if row and row[0] is not None else -1


class BigTableAdminMixin:
    """Changelist settings for tables of millions of rows: no full counts, no facet counts."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER


class ViewOnlyAdminMixin:
    """Rows shown to staff but never added, changed or deleted from the admin.

    For data the database refuses to change (blobs, the event log) or that only services may
    write because other rows summarise it (messages, threads, labels). The detail page lists
    every column but those in ``exclude``, including the ones Django leaves out of forms (ids,
    ``auto_now`` dates), then ``readonly_fields``.
    """

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str | Callable]:
        excluded = set(self.exclude or ())
        return [*(f.name for f in self.opts.fields if f.name not in excluded), *self.readonly_fields]


class RecentValuesFilter(admin.SimpleListFilter):
    """Filters a free-text column on the values found in the table's newest rows.

    A plain list_filter on such a column lists its choices with ``SELECT DISTINCT`` over the whole
    table on every page view; the newest ``sample`` rows (read along the primary key) hold every
    value in current use. Subclasses set ``title`` and ``parameter_name``, the column's name.
    """

    sample = 1000

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        recent = model_admin.model._default_manager.order_by("-pk").values_list(self.parameter_name, flat=True)
        values = {value for value in recent[: self.sample] if value}
        if self.value():
            values.add(self.value())
        return [(value, value) for value in sorted(values)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value():
            return queryset.filter(**{self.parameter_name: self.value()})
        return queryset


@admin.display(description="size", ordering="size")
def size_human(obj: Model) -> str:
    """A model's ``size`` in bytes, in human units ("1.5 MB"), for list_display and readonly_fields."""
    return filesizeformat(obj.size)


@admin.register(DomainEvent)
class DomainEventAdmin(BigTableAdminMixin, ViewOnlyAdminMixin, admin.ModelAdmin):
    """The append-only event log: a database trigger refuses updates and deletes."""

    list_display = ("id", "event_type", "subject_type", "subject_id", "mailbox_id", "source_tag", "occurred_at")
    list_filter = ("event_type", ("occurred_at", admin.DateFieldListFilter))
    search_fields = ("subject_id__exact", "mailbox_id__exact", "source_tag__exact")
