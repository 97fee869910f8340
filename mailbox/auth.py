"""The authentication backend: Django's, loading each request's user together with the mailbox."""

from functools import cache

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import router

from mailbox.models import Alias, Mailbox
from mailsite.db import fetch_prepared


@cache
def _user_with_mailbox_sql() -> tuple[str, list[str], list[str]]:
    """The statement reading a user and its mailbox (NULLs when it has none), then the mailbox's
    alias addresses, by the user's id, and the attribute names of each model's columns in it.
    Built once per process from the models."""
    user_model = get_user_model()
    user_fields = [f.attname for f in user_model._meta.concrete_fields]
    mailbox_fields = [f.attname for f in Mailbox._meta.concrete_fields]
    columns = [f"u.{f.column}" for f in user_model._meta.concrete_fields]
    columns += [f"m.{f.column}" for f in Mailbox._meta.concrete_fields]
    alias_mailbox = Alias._meta.get_field("mailbox").column
    columns.append(f"ARRAY(SELECT a.address FROM {Alias._meta.db_table} a WHERE a.{alias_mailbox} = m.id)")  # noqa: S608 - names from the models
    sql = (
        f"SELECT {', '.join(columns)} FROM {user_model._meta.db_table} u "  # noqa: S608 - names from the models
        f"LEFT JOIN {Mailbox._meta.db_table} m ON m.user_id = u.{user_model._meta.pk.column} "
        f"WHERE u.{user_model._meta.pk.column} = %s"
    )
    return sql, user_fields, mailbox_fields


class MailboxUserBackend(ModelBackend):
    """``ModelBackend`` whose per-request user comes with its mailbox and the mailbox's aliases
    (``Mailbox.own_addresses``) in the same query, so a page reads them in one round trip
    (``selectors.mailbox_get_for_user`` then needs none). Authentication, permissions and the
    active-user check are ``ModelBackend``'s; the statement is written once per process, as building
    it through the ORM on every request cost more CPU than the database spends answering it."""

    def get_user(self, user_id: object) -> AbstractBaseUser | None:
        user_model = get_user_model()
        try:
            user_id = user_model._meta.pk.to_python(user_id)
        except ValidationError:  # a malformed id in a session is no user
            return None
        sql, user_fields, mailbox_fields = _user_with_mailbox_sql()
        using = router.db_for_read(user_model)
        rows = fetch_prepared(sql, [user_id], using=using)
        if not rows:
            return None
        row = rows[0]
        user = user_model.from_db(using, user_fields, row[: len(user_fields)])
        mailbox_row, aliases = row[len(user_fields) : -1], row[-1]
        mailbox = Mailbox.from_db(using, mailbox_fields, mailbox_row) if mailbox_row[0] is not None else None
        if mailbox is not None:  # what the cached property would read, read here with the rest
            mailbox.__dict__["own_addresses"] = frozenset({mailbox.address, *aliases})
        # What select_related("mailbox") caches: user.mailbox, and the mailbox's user.
        user_model.mailbox.related.set_cached_value(user, mailbox)
        if mailbox is not None:
            Mailbox.user.field.set_cached_value(mailbox, user)
        return user if self.user_can_authenticate(user) else None
