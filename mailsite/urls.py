from collections.abc import Callable
from functools import wraps

from anymail import urls as anymail_urls
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, include, path

from delivery.metrics import metrics_view
from delivery.sns import AmazonSESInboundView, AmazonSESTrackingView
from delivery.webhooks import webhook_secret_required

# Anymail's SES views do not check SNS signatures; ours do (delivery.sns).
SNS_VERIFIED_VIEWS = {
    "amazon_ses_inbound_webhook": AmazonSESInboundView.as_view(),
    "amazon_ses_tracking_webhook": AmazonSESTrackingView.as_view(),
}


def _body_kept(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Read the body before Anymail parses the form, so the receiver can still recover a raw
    field's exact bytes where Django's UTF-8 decoding replaced some (mailbox.receivers)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        request.body  # noqa: B018 - read for its side effect: Django keeps it
        return view(request, *args, **kwargs)

    return wrapped


def _anymail_patterns() -> list[URLPattern]:
    """Anymail's webhook URLs. Public: ESPs authenticate by basic auth or signature, never by a
    session, so each view is marked ``login_not_required`` for the LoginRequiredMiddleware; and
    each refuses every request outside debug mode while no webhook secret is set (fail closed)."""
    patterns = []
    for pattern in anymail_urls.urlpatterns:
        view = SNS_VERIFIED_VIEWS.get(pattern.name, pattern.callback)
        if pattern.name.endswith("_inbound_webhook"):
            view = _body_kept(view)
        view = webhook_secret_required(view)
        patterns.append(URLPattern(pattern.pattern, login_not_required(view), pattern.default_args, pattern.name))
    return patterns


urlpatterns = [
    path("admin/", admin.site.urls),
    # Login and logout only: a password reset mailed to the mailbox that is locked is no use.
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True, template_engine="jinja2"),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("anymail/", include((_anymail_patterns(), anymail_urls.app_name))),
    path("metrics", metrics_view, name="metrics"),
    path("", include("mailbox.urls")),
]
