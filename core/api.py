"""The REST API's shared parts: the one exception handler, the schema's error responses and
the server-rendered reference page.

Every error is JSON `{"code": ..., "detail": ...}` (validation errors add `errors`, per
field). `code` is stable; clients branch on it, never on `detail`, which is for people.
Domain errors carry their code and HTTP status in their class (core.exceptions); the generic
ones (401, 404, 405, 429, ...) are Django REST framework's own exception classes. `error_codes`
collects both, so the handler, the schema and the reference page cannot disagree.

Interactive documentation: drf-spectacular's Swagger UI and Redoc load JavaScript from a CDN
(or need the drf-spectacular-sidecar package as an installed app), so /api/docs/ is a
server-rendered page built from the same OpenAPI schema that /api/schema/ serves.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import (
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import Http404, HttpRequest, HttpResponse
from django.template import engines
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView, set_rollback
from rest_framework.views import exception_handler as drf_exception_handler

from core.exceptions import DomainError, RequestTooLarge, domain_error_codes

logger = logging.getLogger(__name__)

# Django REST framework's own refusals, by class: their codes and statuses are DRF's.
GENERIC_ERRORS = (
    exceptions.ParseError, exceptions.AuthenticationFailed, exceptions.NotAuthenticated,
    exceptions.PermissionDenied, exceptions.NotFound, exceptions.MethodNotAllowed,
    exceptions.NotAcceptable, exceptions.UnsupportedMediaType, exceptions.Throttled,
)
INVALID_INPUT, INTERNAL_ERROR = "invalid_input", "internal_error"


def error_codes() -> dict[str, int]:
    """Every error code the API can answer with, and its HTTP status."""
    codes = {error.default_code: error.status_code for error in GENERIC_ERRORS}
    codes |= {INVALID_INPUT: 400, INTERNAL_ERROR: 500}
    return codes | domain_error_codes()


def codes_for_status(status_code: int) -> list[str]:
    return sorted(code for code, answer in error_codes().items() if answer == status_code)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    exc = _bad_input(exc)
    if isinstance(exc, DomainError):
        set_rollback()
        return Response({"code": exc.code, "detail": exc.message}, status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    if isinstance(exc, exceptions.APIException):
        response = drf_exception_handler(exc, context)  # status, headers, rollback
        assert response is not None
        response.data = _error_body(exc)
        return response
    if settings.DEBUG:
        return None  # Django's technical 500 page, with the traceback
    logger.exception("internal error in %s", context.get("view").__class__.__name__)
    set_rollback()
    return Response({"code": INTERNAL_ERROR,
                     "detail": "Internal error; it has been logged for the organisers."},
                    status=status.HTTP_500_INTERNAL_SERVER_ERROR)


def _bad_input(exc: Exception) -> Exception:
    """Django's refusals of a request's body (read past DATA_UPLOAD_MAX_MEMORY_SIZE, too
    many fields or files) are the client's fault: 413 and 400, never a 500."""
    if isinstance(exc, RequestDataTooBig):
        return RequestTooLarge("The request body is larger than this endpoint accepts.")
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return exceptions.ParseError(str(exc))
    if isinstance(exc, SuspiciousOperation):
        logging.getLogger("django.security").warning("%s: %s", type(exc).__name__, exc)
        return exceptions.ParseError("The request could not be read.")
    return exc


def _error_body(exc: exceptions.APIException) -> dict[str, Any]:
    if isinstance(exc, exceptions.ValidationError):
        errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return {"code": INVALID_INPUT, "detail": _first_message(errors), "errors": errors}
    code = exc.get_codes()
    body = {"code": code if isinstance(code, str) else exc.default_code, "detail": str(exc.detail)}
    return body | getattr(exc, "extra", {})


def _first_message(errors: Any, field: str = "") -> str:
    while isinstance(errors, (list, dict)) and errors:
        if isinstance(errors, dict):
            field, errors = next(iter(errors.items()))
        else:
            errors = errors[0]
    text = str(errors) or "Invalid input."
    return text if field in ("", "non_field_errors") else f"{field}: {text}"


# --- schema ------------------------------------------------------------------------------


ERROR_SCHEMA = {
    "type": "object",
    "required": ["code", "detail"],
    "properties": {
        "code": {"type": "string", "description": "Stable machine-readable error code."},
        "detail": {"type": "string", "description": "What went wrong, for people."},
        "errors": {"type": "object", "additionalProperties": True,
                   "description": "invalid_input only: messages per field."},
    },
}
ERROR_MEANINGS = {
    400: "Invalid request", 401: "Not logged in, or a bad or revoked token",
    403: "Known user, not allowed (yet)", 404: "Absent, or not visible to you",
    409: "Conflicts with the current state (a chunk at a wrong offset adds `received`, `size`)",
    413: "The request body is larger than this endpoint accepts (refused before it is read)",
    415: "The request body's media type is not accepted",
    429: "Try again later (see Retry-After when throttled)",
    507: "The platform is short of disk space",
}
UPLOADING_TAGS = {"uploads", "submissions"}


def error_description(status_code: int) -> str:
    return f"{ERROR_MEANINGS[status_code]}: {', '.join(codes_for_status(status_code))}."


UNSAFE = {"post", "put", "patch", "delete"}


def needs_login(operation: dict[str, Any]) -> bool:
    security = operation.get("security", [])
    return bool(security) and {} not in security


def _error_statuses(url: str, method: str, operation: dict[str, Any]) -> list[int]:
    parameters = operation.get("parameters", [])
    codes = {401, 429}
    if "{" in url or any(p.get("name") == "page" for p in parameters):
        codes.add(404)
    if any(p.get("in") in ("query", "header") for p in parameters):
        codes.add(400)
    if needs_login(operation):
        codes.add(403)
    if method in UNSAFE:  # services refuse writes for reasons of input, permission and state
        codes |= {400, 403, 409, 413, 415}
        if UPLOADING_TAGS & set(operation.get("tags", [])):
            codes.add(507)
    return sorted(codes)


def document_errors(result: dict[str, Any], generator: Any, request: Any, public: bool) -> Any:
    """drf-spectacular postprocessing hook: the shared error body on every operation."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for url, item in result.get("paths", {}).items():
        for method, operation in item.items():
            for code in _error_statuses(url, method, operation):
                operation["responses"].setdefault(
                    str(code), {"description": error_description(code), "content": reference})
    return result


# --- reference page ----------------------------------------------------------------------

DOCS_TEMPLATE = """{% extends "base.html" %}
{% block title %}API reference{% endblock %}
{% block content %}
<h1>{{ info.title }} <span class="muted">{{ info.version }}</span></h1>
<p>{{ info.description }}</p>
<p>OpenAPI 3 schema: <a href="{% url 'api:schema' %}">YAML</a> ·
<a href="{% url 'api:schema' %}?format=json">JSON</a>. Personal tokens:
<a href="{% url 'accounts:tokens' %}">your API tokens</a>.</p>
<section class="panel" id="errors"><h2>Error codes</h2>
<p>Every error is JSON <code>{"code": ..., "detail": ...}</code>; branch on
<code>code</code>, show <code>detail</code> to people.</p>
<table class="table"><thead><tr><th>code</th><th>HTTP status</th></tr></thead><tbody>
{% for code, status in error_codes %}
<tr><td><code>{{ code }}</code></td><td>{{ status }}</td></tr>
{% endfor %}
</tbody></table></section>
{% for tag, operations in groups %}<section class="panel"><h2>{{ tag }}</h2>
{% for op in operations %}<article class="operation" id="{{ op.id }}">
<h3><code>{{ op.method }} {{ op.path }}</code></h3>
<p>{{ op.summary }}
{% if not op.auth %}<span class="badge">no login needed</span>{% endif %}</p>
{% if op.description %}<p class="muted">{{ op.description }}</p>{% endif %}
{% if op.parameters %}<table class="table">
<thead><tr><th>Parameter</th><th>In</th><th>Type</th><th></th></tr></thead><tbody>
{% for p in op.parameters %}
<tr><td><code>{{ p.name }}</code>{% if p.required %} (required){% endif %}</td>
<td>{{ p.in }}</td><td>{{ p.type }}</td><td>{{ p.description }}</td></tr>
{% endfor %}
</tbody></table>{% endif %}
{% if op.body %}<p>Request body ({{ op.body.media }}):
{% for f in op.body.fields %}<code>{{ f }}</code>{% if not forloop.last %}, {% endif %}
{% endfor %}</p>{% endif %}
<p>Returns {% for code, text in op.responses %}<strong>{{ code }}</strong> {{ text }}
{% endfor %}· <a href="#errors">errors</a>: {{ op.errors|join:", " }}</p>
</article>{% endfor %}</section>{% endfor %}
<section class="panel" id="schemas"><h2>Schemas</h2>
{% for name, fields in shapes %}<p id="schema-{{ name }}"><strong>{{ name }}</strong>:
{% for f in fields %}<code>{{ f }}</code>{% if not forloop.last %}, {% endif %}{% endfor %}
</p>{% endfor %}</section>
{% endblock %}"""


def _schema_type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    for combined in ("allOf", "oneOf", "anyOf"):
        if combined in schema:
            return "|".join(_schema_type(part) for part in schema[combined])
    if schema.get("type") == "array":
        return f"array of {_schema_type(schema.get('items', {}))}"
    return str(schema.get("format") or schema.get("type") or "any")


def _response_type(response: dict[str, Any]) -> str:
    content = response.get("content", {})
    if not content:
        return "no content"
    media, spec = next(iter(content.items()))
    return f"{_schema_type(spec.get('schema', {}))} ({media})"


def _body(operation: dict[str, Any], components: dict[str, Any]) -> dict[str, Any] | None:
    content = operation.get("requestBody", {}).get("content", {})
    if not content:
        return None
    media, spec = next(iter(content.items()))
    schema = spec.get("schema", {})
    schema = components.get(_schema_type(schema), schema) if "$ref" in schema else schema
    return {"media": media, "fields": _fields(schema) or [_schema_type(schema)]}


def _fields(schema: dict[str, Any]) -> list[str]:
    """`name: type` per property; `?` marks optional ones, `|null` nullable ones."""
    required = set(schema.get("required", []))
    return [
        f"{name}{'' if name in required else '?'}: {_schema_type(field)}"
        f"{'|null' if field.get('nullable') else ''}"
        for name, field in schema.get("properties", {}).items()
    ]


def _operation(
    url: str, method: str, operation: dict[str, Any], components: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": operation.get("operationId", ""), "method": method.upper(), "path": url,
        "summary": operation.get("summary", ""), "description": operation.get("description", ""),
        "auth": needs_login(operation),
        "parameters": [
            {"name": p["name"], "in": p["in"], "required": p.get("required", False),
             "type": _schema_type(p.get("schema", {})), "description": p.get("description", "")}
            for p in operation.get("parameters", [])
        ],
        "body": _body(operation, components),
        "responses": [
            (code, response.get("description") or _response_type(response))
            for code, response in operation["responses"].items() if code < "400"
        ],
        "errors": [code for code in operation["responses"] if code >= "400"],
    }


def api_docs(request: HttpRequest) -> HttpResponse:
    schema = SchemaGenerator().get_schema(  # type: ignore[no-untyped-call]
        request=None, public=True)
    components = schema.get("components", {}).get("schemas", {})
    groups: dict[str, list[dict[str, Any]]] = {}
    for url, item in schema["paths"].items():
        for method, operation in item.items():
            tag = (operation.get("tags") or ["other"])[0]
            groups.setdefault(tag, []).append(_operation(url, method, operation, components))
    shapes = [(name, _fields(spec) or [", ".join(map(str, spec.get("enum", [])))])
              for name, spec in sorted(components.items())]
    context = {"info": schema["info"], "groups": list(groups.items()), "shapes": shapes,
               "error_codes": sorted(error_codes().items(), key=lambda item: (item[1], item[0]))}
    template = engines["django"].from_string(DOCS_TEMPLATE)
    return HttpResponse(template.render(context, request))


@extend_schema(exclude=True)
class Unmatched(APIView):
    """Any other path under /api/: a JSON 404, never an HTML page."""

    permission_classes = [AllowAny]

    def http_method_not_allowed(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        raise exceptions.NotFound("No such API endpoint.")

    options = http_method_not_allowed



