"""Per-request activation of the user's time zone, so every date a page or a fragment shows (list
rows, the conversation, the reply's "On DATE" line) is the mailbox's wall-clock time."""

from django.http import HttpRequest, HttpResponseBase
from django.utils import timezone
from django.utils.deprecation import MiddlewareMixin

from mailbox.selectors import mailbox_get_for_user
from mailbox.services.preferences import mailbox_zone


class MailboxTimezoneMiddleware(MiddlewareMixin):
    """Activates the logged-in user's mailbox zone (``preferences.mailbox_zone``) for the request.

    Costs no query: the request's user comes with its mailbox (``mailbox.auth``), and zones are
    remembered per name. The zone is dropped after the response, so nothing else on the thread
    (an anonymous request, a test) inherits it. Goes after ``AuthenticationMiddleware``."""

    def process_request(self, request: HttpRequest) -> None:
        user = request.user
        mailbox = mailbox_get_for_user(user=user) if user.is_authenticated else None
        if mailbox is None:
            timezone.deactivate()
        else:
            timezone.activate(mailbox_zone(mailbox=mailbox))

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        timezone.deactivate()
        return response
