"""Inserting many new rows of one model in one short statement: each column travels as one array.

``QuerySet.bulk_create`` already sends ``INSERT … SELECT * FROM UNNEST(%s::t[], …)`` for plain
columns, but falls back to a ``VALUES`` row per instance as soon as one column is an array, or a
value is an SQL expression (the search documents): a statement of thousands of placeholders that
Django prepares value by value and psycopg then re-parses on every call, since a statement that
long is never cached. ``rows_insert`` keeps the short form for those models too: array columns
travel as JSON, SQL-computed columns are built from per-row inputs in the same statement, and text
columns travel as one JSON array each (``_JSON_CARRIED``).
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.db import connection
from django.db.models import Field, JSONField, Model

# A JSON array as an SQL array, in order.
_JSON_ARRAY = "ARRAY(SELECT e FROM jsonb_array_elements_text({0}) WITH ORDINALITY AS a(e, n) ORDER BY n)"


@dataclass(frozen=True)
class Computed:
    """A column computed in SQL from per-row inputs: ``sql`` names the inputs ``{0}``, ``{1}`` …;
    ``inputs`` holds each one's SQL type and its value for every row, in the rows' order."""

    sql: str
    inputs: Sequence[tuple[str, Sequence[Any]]]


def rows_insert(
    *, objs: Sequence[Model], computed: Mapping[str, Computed] | None = None, ids_given: bool = False
) -> None:
    """INSERT the unsaved instances ``objs`` (all of one model) in one statement and set their
    primary keys, as ``bulk_create`` does (the ids come back in the rows' order, which Django's own
    UNNEST insert relies on too). ``ids_given``: the instances carry their primary keys already
    (taken from the sequence beforehand), written as they are.

    Every concrete column is written from the instance's attribute (defaults are set when the
    instance is built; ``auto_now``/``auto_now_add`` are applied), except those named in
    ``computed``. No signals, no validation: the database's constraints are the check.
    """
    if objs:
        _insert(objs, computed or {}, conflict="", ids_given=ids_given)


def row_insert_unless_present(*, obj: Model) -> bool:
    """INSERT the unsaved instance ``obj`` as ``rows_insert`` does, unless a unique constraint says
    it is there already: then nothing is written and ``False`` comes back. One statement (``ON
    CONFLICT DO NOTHING``), where ``save()`` in a savepoint, to survive the ``IntegrityError``,
    takes three."""
    return _insert([obj], {}, conflict=" ON CONFLICT DO NOTHING") == 1


def _insert(objs: Sequence[Model], computed: Mapping[str, Computed], *, conflict: str, ids_given: bool = False) -> int:
    """The insert of ``rows_insert``, with ``conflict`` after its SELECT; sets the returned fields of
    the rows written (in order: with a conflict clause, only for a single row) and counts them."""
    meta = type(objs[0])._meta
    fields = [
        f
        for f in meta.concrete_fields
        if (not f.db_returning or (ids_given and f.primary_key)) and f.column not in computed
    ]
    sources: list[str] = []
    params: list[Any] = []
    selected: list[str] = []
    for field in fields:
        placeholder, values = _column(field, objs)
        source, param, element = _source(_array_type(field), values)
        selected.append(placeholder.format(element.format(f"v.c{len(sources)}")))
        sources.append(source)
        params.append(param)
    for expression in computed.values():
        names = []
        for sql_type, values in expression.inputs:
            source, param, element = _source(f"{sql_type}[]", list(values))
            names.append(element.format(f"v.c{len(sources)}"))
            sources.append(source)
            params.append(param)
        selected.append(expression.sql.format(*names))
    quote = connection.ops.quote_name
    columns = [quote(f.column) for f in fields] + [quote(column) for column in computed]
    returned = [f for f in meta.db_returning_fields if f not in fields] or [meta.pk]
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(columns)}) "  # noqa: S608 - names from the model's meta
        f"SELECT {', '.join(selected)} FROM ROWS FROM ({', '.join(sources)}) "
        f"AS v({', '.join(f'c{n}' for n in range(len(sources)))}){conflict} "
        f"RETURNING {', '.join(quote(f.column) for f in returned)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    for obj, row in zip(objs, rows, strict=not conflict):
        for field, value in zip(returned, row, strict=True):
            setattr(obj, field.attname, value)
        obj._state.adding = False
        obj._state.db = connection.alias
    return len(rows)


def _column(field: Field, objs: Sequence[Model]) -> tuple[str, list[Any]]:
    """(how the column is selected from its array element ``{}``, the values of every row)."""
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        values = [field.pre_save(obj, True) for obj in objs]
    else:
        values = [getattr(obj, field.attname) for obj in objs]
    if isinstance(field, ArrayField):
        if isinstance(field.base_field, ArrayField):
            raise TypeError(f"{field}: nested arrays are not supported")
        # An array per row cannot be an element of an array of arrays (they differ in length): JSON.
        element = _plain_type(field.base_field)
        select = f"CASE WHEN {{0}} IS NULL THEN NULL ELSE {_JSON_ARRAY}::{element}[] END"
        return select, [None if v is None else json.dumps(list(v)) for v in values]
    if isinstance(field, JSONField):
        # As Django writes them: None is SQL NULL in a nullable column, JSON null otherwise.
        return "{}", [None if v is None and field.null else json.dumps(v, cls=field.encoder) for v in values]
    if field.choices:
        values = [v.value if isinstance(v, Enum) else v for v in values]
    return "{}", values


# Texts travel as one JSON array per column rather than as an SQL array: psycopg quotes an array's
# elements in Python, character class by character class, where ``json.dumps`` and libpq's literal
# escaping run in C (three to four times less CPU for message bodies and search texts). Elements
# come out in order, as ``unnest`` gives an array's, and ``ROWS FROM`` zips the columns by position.
_JSON_CARRIED = {"text[]": "{}", "varchar[]": "{}", "jsonb[]": "{}::jsonb"}


def _source(array_type: str, values: list[Any]) -> tuple[str, Any, str]:
    """(the set-returning function that yields a column's values, its parameter, how one value is
    read from its output ``{}``)."""
    element = _JSON_CARRIED.get(array_type)
    if element is None or not all(v is None or isinstance(v, str) for v in values):
        return f"unnest(%s::{array_type})", values, "{}"
    return "json_array_elements_text(%s::json)", json.dumps(values, ensure_ascii=False), element


def _array_type(field: Field) -> str:
    if isinstance(field, ArrayField | JSONField):
        return "jsonb[]"
    return f"{_plain_type(field)}[]"


def _plain_type(field: Field) -> str:
    """The column's type without its length (``varchar``, not ``varchar(998)``), as Django's UNNEST
    insert does: a cast to the length would cut a value that the column should refuse."""
    return field.db_type(connection).split("(")[0]
