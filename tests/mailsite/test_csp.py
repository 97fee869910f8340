"""The site's CSP middleware (``mailsite.csp``) sends django-csp's header, made once per process, and
leaves any response that changes the policy to django-csp."""

import re

from csp.constants import NONCE, SELF
from csp.decorators import csp_exempt, csp_update
from csp.utils import build_policy
from django.http import HttpResponse
from django.test import RequestFactory, override_settings

from mailsite.csp import CSPMiddleware


def _through_middleware(view, path: str = "/") -> HttpResponse:
    request = RequestFactory().get(path)
    middleware = CSPMiddleware(view)
    middleware.process_request(request)
    return middleware.process_response(request, view(request))


def test_a_plain_response_gets_the_policy_django_csp_builds():
    response = _through_middleware(lambda request: HttpResponse("page"))

    assert response["Content-Security-Policy"] == build_policy()
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


def test_a_changed_setting_changes_the_header():
    _through_middleware(lambda request: HttpResponse("page"))  # made and remembered
    policy = {"DIRECTIVES": {"default-src": ["'none'"]}}

    with override_settings(CONTENT_SECURITY_POLICY=policy, CONTENT_SECURITY_POLICY_REPORT_ONLY=policy):
        response = _through_middleware(lambda request: HttpResponse("page"))

    assert response["Content-Security-Policy"] == "default-src 'none'"
    assert response["Content-Security-Policy-Report-Only"] == "default-src 'none'"


def test_views_that_change_the_policy_still_get_their_own():
    updated = _through_middleware(csp_update({"img-src": ["https://img.example"]})(lambda r: HttpResponse("x")))
    exempt = _through_middleware(csp_exempt()(lambda request: HttpResponse("x")))

    assert "img-src 'self' data: https://img.example" in updated["Content-Security-Policy"]
    assert "Content-Security-Policy" not in exempt


def test_a_nonce_used_by_the_page_is_in_its_header():
    def view(request):
        return HttpResponse(f"<script nonce='{request.csp_nonce}'></script>")

    with override_settings(CONTENT_SECURITY_POLICY={"DIRECTIVES": {"script-src": [SELF, NONCE]}}):
        response = _through_middleware(view)

    nonce = re.search(r"nonce='([^']+)'", response.content.decode())[1]
    assert f"script-src 'self' 'nonce-{nonce}'" in response["Content-Security-Policy"]


def test_excluded_prefixes_get_no_header():
    policy = {"EXCLUDE_URL_PREFIXES": ["/open/"], "DIRECTIVES": {"default-src": ["'self'"]}}
    with override_settings(CONTENT_SECURITY_POLICY=policy):
        response = _through_middleware(lambda request: HttpResponse("x"), path="/open/page")

    assert "Content-Security-Policy" not in response
