"""Counters of the inbound pipeline, and the ``/metrics`` endpoint Prometheus scrapes.

With ``PROMETHEUS_MULTIPROC_DIR`` set in the environment of every process (web servers, SMTP
listener, Celery workers; an empty folder shared by them, emptied at deploy), each process writes
its counts there and ``/metrics`` adds them up (prometheus-client's multiprocess mode). Without
it, ``/metrics`` shows the counts of the process that answers, as in development and tests.

``/metrics`` is not public: a staff session, or ``Authorization: Bearer <MAILSITE_METRICS_TOKEN>``.
"""

import hmac
import os

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest, multiprocess
from prometheus_client import REGISTRY as DEFAULT_REGISTRY

INBOUND_RECEIVED = Counter("mailsite_inbound_received", "Arrivals of raw mail stored as new receipts.", ["source"])
INBOUND_DUPLICATES = Counter(
    "mailsite_inbound_duplicates", "Arrivals recognised as repeats of a stored receipt (nothing changed).", ["source"]
)
INBOUND_PARSED = Counter("mailsite_inbound_parsed", "Receipts parsed and delivered into every local mailbox.")
INBOUND_QUARANTINED = Counter("mailsite_inbound_quarantined", "Receipts set aside as not deliverable mail.")
INBOUND_FAILED = Counter("mailsite_inbound_failed", "Receipts marked failed after a permanent error.")
INBOUND_RETRIED = Counter("mailsite_inbound_retried", "Parse attempts retried after a transient error.")


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return DEFAULT_REGISTRY


def _bearer_token_valid(request: HttpRequest) -> bool:
    expected = settings.MAILSITE_METRICS_TOKEN
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return bool(expected) and scheme.lower() == "bearer" and hmac.compare_digest(token.strip(), expected)


@login_not_required  # a scraper has no session: it authenticates with the bearer token
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """The counters in Prometheus' text format, for staff and for the scraper's token."""
    if not _bearer_token_valid(request):
        if not request.user.is_authenticated:
            response = HttpResponse("Authentication required.\n", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        if not request.user.is_staff:
            return HttpResponse("Staff only.\n", status=403, content_type="text/plain")
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
