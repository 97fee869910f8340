"""The authentication backend: Django's, loading each request's user together with the mailbox."""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.base_user import AbstractBaseUser


class MailboxUserBackend(ModelBackend):
    """``ModelBackend`` whose per-request user comes with its mailbox in the same query, so a page
    reads the session's user and its mailbox in one round trip (``selectors.mailbox_get_for_user``
    then needs none). Authentication and permissions are ``ModelBackend``'s, unchanged."""

    def get_user(self, user_id: object) -> AbstractBaseUser | None:
        user_model = get_user_model()
        try:
            user = user_model._default_manager.select_related("mailbox").get(pk=user_id)
        except user_model.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None
