"""The OpenAPI 3 schema at /api/schema/ and the server-rendered reference at /api/docs/."""

from __future__ import annotations

import yaml
from django.test import Client
from drf_spectacular.validation import validate_schema

OPERATIONS = {
    ("post", "/api/v1/auth/token/"), ("delete", "/api/v1/auth/token/"),
    ("get", "/api/v1/challenges/"), ("get", "/api/v1/challenges/{slug}/"),
    ("post", "/api/v1/challenges/{slug}/terms/accept/"),
    ("get", "/api/v1/challenges/{slug}/files/"), ("get", "/api/v1/challenges/{slug}/files/{name}"),
    ("post", "/api/v1/challenges/{slug}/teams/"), ("get", "/api/v1/challenges/{slug}/teams/mine/"),
    ("post", "/api/v1/challenges/{slug}/teams/mine/invitations/"),
    ("post", "/api/v1/challenges/{slug}/teams/mine/leave/"),
    ("post", "/api/v1/invitations/{token}/accept/"),
    ("get", "/api/v1/challenges/{slug}/phases/{phase}/submissions/"),
    ("post", "/api/v1/challenges/{slug}/phases/{phase}/submissions/"),
    ("get", "/api/v1/challenges/{slug}/phases/{phase}/leaderboard/"),
    ("get", "/api/v1/challenges/{slug}/phases/{phase}/quota/"),
    ("post", "/api/v1/challenges/{slug}/phases/{phase}/uploads/"),
    ("get", "/api/v1/submissions/{id}/"), ("post", "/api/v1/submissions/{id}/select/"),
    ("post", "/api/v1/submissions/{id}/note/"),
    ("post", "/api/v1/submissions/{id}/cancel/"),
    ("get", "/api/v1/uploads/{id}/"), ("put", "/api/v1/uploads/{id}/"),
    ("post", "/api/v1/uploads/{id}/finish/"),
}


def schema() -> dict:  # type: ignore[type-arg]
    response = Client().get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)  # type: ignore[no-any-return]


def test_it_serves_a_valid_openapi_3_schema_of_every_operation(db):  # type: ignore[no-untyped-def]
    document = schema()
    validate_schema(document)
    assert document["openapi"].startswith("3.")
    found = {(method, path) for path, item in document["paths"].items() for method in item}
    assert found == OPERATIONS


def test_it_documents_the_error_body_on_every_operation(db):  # type: ignore[no-untyped-def]
    document = schema()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            errors = {code for code in operation["responses"] if code >= "400"}
            assert {"401", "429"} <= errors, (method, path)
            for code in errors:
                reference = operation["responses"][code]["content"]["application/json"]
                assert reference["schema"] == {"$ref": "#/components/schemas/Error"}


def test_it_declares_token_authentication_and_anonymous_reads(db):  # type: ignore[no-untyped-def]
    document = schema()
    assert document["components"]["securitySchemes"]["tokenAuth"] == {
        "type": "apiKey", "in": "header", "name": "Authorization",
        "description": 'Token-based authentication with required prefix "Token"'}
    assert {} in document["paths"]["/api/v1/challenges/"]["get"]["security"]
    assert {} not in document["paths"]["/api/v1/uploads/{id}/"]["put"]["security"]


def test_it_renders_a_reference_page_of_every_operation(db):  # type: ignore[no-untyped-def]
    response = Client().get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    for method, path in OPERATIONS:
        assert f"{method.upper()} {path}" in page
    assert "<script src=\"http" not in page  # nothing from a CDN
    assert "quota_exceeded" in page and "429" in page
