"""Request bodies refused before they are read.

`BodySizeLimit` answers 413 from a request's Content-Length when it is above its endpoint's
limit, before Django, the CSRF check or a view reads a byte of it: JSON `{"code":
"request_too_large", "detail": ...}` under /api/, a plain page elsewhere. Endpoints are
named by their URL names in `HELDOUT_REQUEST_LIMITS` (uploads, station answers); every
other endpoint gets `HELDOUT_MAX_REQUEST_BYTES`, and the admin's pages the larger
`HELDOUT_MAX_ADMIN_REQUEST_BYTES` for staff only (bundles and evaluation data), so a
stranger cannot post gigabytes to its login page. A body without a Content-Length is not
read by Django at all (WSGI), so the header is all there is to check.

It also refuses a form field holding NUL (PostgreSQL cannot store one) in form posts to
pages with the default limit, whose bodies are small by then (CSRF's check parses them
anyway): views that keep `request.POST` values without a form would otherwise fail at the
database with a 500. (Not under /api/: a form parsed here would reach DRF views that accept
JSON only; core.parsers refuses NUL in JSON, DRF's CharField in forms.)

`bad_request` is the site's handler400: Django answers RequestDataTooBig (a body or form
above DATA_UPLOAD_MAX_MEMORY_SIZE, read after all) and its other SuspiciousOperations with
it, so these are 413 and 400, in the API's JSON shape under /api/.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from django.views import defaults

from core.exceptions import RequestTooLarge
from core.parsers import NUL

FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def is_api(request: HttpRequest) -> bool:
    return bool(request.path_info.startswith("/api/"))


def body_limit(request: HttpRequest) -> int:
    """The most bytes `request`'s endpoint accepts in a body."""
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return int(settings.HELDOUT_MAX_REQUEST_BYTES)
    if match.view_name in settings.HELDOUT_REQUEST_LIMITS:
        return int(settings.HELDOUT_REQUEST_LIMITS[match.view_name])
    if "admin" in match.namespaces and getattr(getattr(request, "user", None), "is_staff",
                                                False):
        return int(settings.HELDOUT_MAX_ADMIN_REQUEST_BYTES)
    return int(settings.HELDOUT_MAX_REQUEST_BYTES)


def declared_length(request: HttpRequest) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0  # Django reads such a body as empty


def refusal(request: HttpRequest, *, status: int, code: str, detail: str) -> HttpResponse:
    """The API's error shape under /api/, a plain page elsewhere."""
    if is_api(request):
        return JsonResponse({"code": code, "detail": detail}, status=status)
    return HttpResponse(detail, status=status, content_type="text/plain; charset=utf-8")


def too_large(request: HttpRequest, limit: int | None = None) -> HttpResponse:
    detail = ("The request body is larger than this endpoint accepts"
              + (f" ({limit:,} bytes)." if limit is not None else "."))
    return refusal(request, status=RequestTooLarge.status, code=RequestTooLarge.code,
                   detail=detail)


def _nul_in_form(request: HttpRequest) -> bool:
    """Whether a field of a small form post holds NUL. Only where the default limit applies:
    parsing a multipart body here would fix its upload handlers before an upload endpoint's
    view could choose them (those views check their fields themselves)."""
    if request.method != "POST" or request.content_type not in FORMS or is_api(request):
        return False  # the API's own parsers decide what it reads (JSON: core.parsers)
    return any(NUL in key or any(NUL in value for value in values)
               for key, values in request.POST.lists())


class BodySizeLimit:
    """After AuthenticationMiddleware (the admin's limit depends on the user) and before any
    middleware's process_view (CsrfViewMiddleware's reads POST bodies)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = body_limit(request)
        if declared_length(request) > limit:
            return too_large(request, limit)
        if limit == settings.HELDOUT_MAX_REQUEST_BYTES and _nul_in_form(request):
            return refusal(request, status=400, code="parse_error",
                           detail="Form fields may not hold NUL characters.")
        return self.get_response(request)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler400: RequestDataTooBig is 413; any other bad request 400 (the site's own 400
    page outside the API)."""
    if isinstance(exception, RequestDataTooBig):
        return too_large(request)
    if not is_api(request):
        return defaults.bad_request(request, exception)
    return refusal(request, status=400, code="parse_error",
                   detail="The request could not be read.")
