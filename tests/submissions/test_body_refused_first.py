"""A signed-in stranger filled the disk: a large multipart submission was written whole to the
upload temp folder before the 403 (the body was parsed, by the CSRF check or the view, before
the membership check). Now membership, terms, window, quota, size and free disk are checked
from the request line and headers alone: over a real socket the server answers while most
of the body is still unsent, and nothing reaches the temp folder."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.test import Client

from accounts.services import token_create
from tests.factories import accept_terms

pytestmark = pytest.mark.django_db(transaction=True)
BOUNDARY = "heldout-test-boundary"
DECLARED = 48 * 1024**2  # below the direct-upload limit: only the rules can refuse it
SENT_FIRST = 256 * 1024


def _session_cookie(user) -> str:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def _raw_post(url: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """POST a multipart body that declares DECLARED bytes, send only its first SENT_FIRST and
    wait for the answer: a server that reads the whole body before answering never does."""
    target = urlparse(url)
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\nbundle\r\n"
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"big.zip\"\r\nContent-Type: application/zip\r\n\r\n").encode()
    lines = [f"POST {path} HTTP/1.1", f"Host: {target.netloc}",
             f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
             f"Content-Length: {DECLARED}", "Connection: close",
             *(f"{k}: {v}" for k, v in headers.items())]
    with socket.create_connection((target.hostname, target.port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + head)
        sock.sendall(b"\0" * (SENT_FIRST - len(head)))
        try:
            return _read_answer(sock)
        except TimeoutError:
            pytest.fail("no answer while the body was incomplete: the server waits to read it")


def _read_answer(sock: socket.socket) -> tuple[int, bytes]:
    """Status and body of one response, read by its Content-Length (a server may keep the
    connection open to drain the unsent body afterwards)."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(65536) or b""
    head, body = answer.split(b"\r\n\r\n", 1)
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        body += sock.recv(65536) or b""
    return int(head.split(b" ", 2)[1]), body


def _temp_files() -> list[Path]:
    folder = Path(settings.FILE_UPLOAD_TEMP_DIR)
    return sorted(folder.iterdir()) if folder.is_dir() else []


def _api_path(phase) -> str:  # type: ignore[no-untyped-def]
    return f"/api/v1/challenges/{phase.challenge.slug}/phases/{phase.slug}/submissions/"


@pytest.mark.parametrize("auth", ["session", "token"])
def test_a_stranger_is_refused_before_the_body_is_read(auth, live_server, phase, dave) -> None:
    before = _temp_files()
    headers = ({"Cookie": _session_cookie(dave)} if auth == "session" else
               {"Authorization": f"Token {token_create(user=dave, name='t').key}"})

    status, body = _raw_post(live_server.url, _api_path(phase), headers)

    assert status == 403 and json.loads(body)["code"] == "not_a_member"
    assert _temp_files() == before


def test_a_team_at_its_quota_is_refused_before_the_body_is_read(
    live_server, phase, team_a, alice
) -> None:
    from challenges.models import Phase

    accept_terms(phase.challenge, alice)
    Phase.objects.filter(pk=phase.pk).update(quota_total=0)

    status, body = _raw_post(live_server.url, _api_path(phase), {"Cookie": _session_cookie(alice)})

    assert status == 429 and json.loads(body)["code"] == "quota_exceeded"


def test_the_plain_form_refuses_a_stranger_before_the_body_is_read(
    live_server, phase, dave
) -> None:
    before = _temp_files()
    path = f"/challenges/{phase.challenge.slug}/phases/{phase.slug}/submit/"

    status, _ = _raw_post(live_server.url, path, {"Cookie": _session_cookie(dave)})

    assert status == 302  # back to the phase page, with the reason as a message
    assert _temp_files() == before


def test_a_member_still_needs_a_valid_csrf_token(client, phase, team_a, alice) -> None:
    accept_terms(phase.challenge, alice)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)

    answer = strict.post(f"/challenges/{phase.challenge.slug}/phases/{phase.slug}/submit/",
                         {"kind": "bundle"})

    assert answer.status_code == 403  # the CSRF check, after the rules
