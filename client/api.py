"""A small HTTP client for the Heldout REST API (`/api/v1/`).

Every failure, whether the network, the server or the payload, becomes one exception type,
`ApiError(code, detail, status)`, whose text is safe to print as a single line. `status` is
the HTTP status, or 0 when no answer arrived.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Iterator
from http.client import RemoteDisconnected
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import requests.auth

from client import __version__

API_PREFIX = "/api/v1/"
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
# A finished upload is validated (zip/tar/CSV checks, sha256) before the server answers.
UPLOAD_READ_TIMEOUT = 600.0
MAX_THROTTLE_WAIT = 30.0
NETWORK = "network_error"

JSON = Any


class ApiError(Exception):
    def __init__(self, code: str, detail: str, status: int = 0,
                 payload: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.status = status
        self.payload = payload or {}

    @property
    def is_network(self) -> bool:
        return self.status == 0


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and everything it wraps (requests -> urllib3 -> socket errors)."""
    queue, seen = [error], set()
    while queue:
        item = queue.pop(0)
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        for inner in (getattr(item, "reason", None), item.__cause__, item.__context__, *item.args):
            if isinstance(inner, BaseException):
                queue.append(inner)


_REASONS: tuple[tuple[type[BaseException], str], ...] = (
    (ConnectionRefusedError, "connection refused"),
    (socket.gaierror, "unknown host"),
    (ConnectionResetError, "the connection was reset"),
    (RemoteDisconnected, "the server closed the connection"),
    (requests.Timeout, "timed out"),
    (TimeoutError, "timed out"),
)


def describe_network_error(error: BaseException) -> str:
    """'connection refused', 'unknown host', 'timed out', 'TLS error: ...' or the OS text."""
    causes = list(_causes(error))
    for kind, text in _REASONS:
        if any(isinstance(item, kind) for item in causes):
            return text
    for item in causes:
        if isinstance(item, ssl.SSLError):
            return f"TLS error: {item.reason or item}"
    for item in reversed(causes):
        if isinstance(item, OSError) and item.strerror:
            return item.strerror.lower()
    return str(causes[-1]) or type(causes[-1]).__name__


def _flatten(detail: Any) -> str:
    """DRF validation errors ({"name": ["This field is required."]}) as one line."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        return " ".join(_flatten(item) for item in detail)
    if isinstance(detail, dict):
        return "; ".join(
            f"{key}: {_flatten(value)}" if key not in ("detail", "non_field_errors")
            else _flatten(value)
            for key, value in detail.items()
        )
    return str(detail)


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def error_from_response(response: requests.Response) -> ApiError:
    status = response.status_code
    body = _json_or_none(response)
    if isinstance(body, dict) and ("code" in body or "detail" in body):
        code = str(body.get("code") or f"http_{status}")
        detail = _flatten(body.get("detail", "")) or response.reason or "error"
        return ApiError(code, detail, status, body)
    if isinstance(body, dict) and body:  # a bare DRF validation error
        return ApiError("invalid", _flatten(body), status, body)
    path = urlsplit(response.url).path
    return ApiError(f"http_{status}",
                    f"{path} answered {status} {response.reason or ''}".rstrip(), status)


class TokenAuth(requests.auth.AuthBase):
    """`Authorization: Token <key>`. As an auth object (not a plain header) it also stops
    requests from replacing the header with credentials found in ~/.netrc."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Token {self.token}"
        return request


class ApiClient:
    """`ApiClient("https://heldout.example.org", token).get("challenges/")`."""

    def __init__(self, base_url: str, token: str | None = None, *,
                 session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = f"heldout-cli/{__version__}"
        self.session.headers["Accept"] = "application/json"
        self._sleep = sleep

    # --- plumbing -----------------------------------------------------------------------

    def url(self, path: str) -> str:
        """An API path, or a URL the server handed out (pagination, downloads) re-rooted on
        our own origin: the token goes to no other host, and a proxy that makes the server
        build http:// or internal-host links does not matter."""
        if path.startswith(("http://", "https://")):
            parts = urlsplit(path)
            origin = urlsplit(self.base_url)
            return f"{origin.scheme}://{origin.netloc}{parts.path}" + (
                f"?{parts.query}" if parts.query else "")
        return self.base_url + API_PREFIX + path.lstrip("/")

    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                read_timeout: float = READ_TIMEOUT, **kwargs: Any) -> requests.Response:
        """Send one request; raise ApiError for no answer or a status >= 400. A 429 with a
        short Retry-After is waited out and retried (the server's throttles)."""
        for _ in range(4):
            response = self._send(method, path, headers, read_timeout, kwargs)
            wait = self._throttle_wait(response)
            if wait is None:
                break
            self._sleep(wait)
            for value in kwargs.values():  # a streamed body must be sent again from its start
                if hasattr(value, "seek"):
                    value.seek(0)
        if response.status_code >= 400:
            raise error_from_response(response)
        return response

    def _send(self, method: str, path: str, headers: dict[str, str] | None,
              read_timeout: float, kwargs: dict[str, Any]) -> requests.Response:
        try:
            return self.session.request(
                method, self.url(path), headers=headers,
                auth=TokenAuth(self.token) if self.token else None,
                timeout=(CONNECT_TIMEOUT, read_timeout), **kwargs)
        except requests.RequestException as error:
            reason = describe_network_error(error)
            raise ApiError(NETWORK, f"cannot reach {self.base_url}: {reason}") from None

    @staticmethod
    def _throttle_wait(response: requests.Response) -> float | None:
        """Seconds to wait before retrying a throttled request; None to not retry (also for
        429 quota_exceeded, which waiting a few seconds does not cure)."""
        if response.status_code != 429:
            return None
        body = _json_or_none(response)
        if isinstance(body, dict) and body.get("code", "throttled") != "throttled":
            return None
        try:
            wait = float(response.headers.get("Retry-After", ""))
        except ValueError:
            return None
        return wait if 0 <= wait <= MAX_THROTTLE_WAIT else None

    def _json(self, response: requests.Response) -> JSON:
        if response.status_code == 204 or not response.content:
            return {}
        body = _json_or_none(response)
        if body is None:
            raise ApiError("bad_response", f"{self.base_url} did not answer with JSON; "
                           "is it a Heldout server?", response.status_code)
        return body

    def get(self, path: str, **params: Any) -> JSON:
        return self._json(self.request("GET", path, params=params or None))

    def post(self, path: str, payload: dict[str, Any] | None = None, *,
             headers: dict[str, str] | None = None) -> JSON:
        return self._json(self.request("POST", path, json=payload or {}, headers=headers))

    def get_all(self, path: str, **params: Any) -> list[JSON]:
        """A list endpoint, following DRF pagination (`results`/`next`) when present."""
        body = self.get(path, **params)
        if isinstance(body, list):
            return body
        items = list(body.get("results", []))
        while body.get("next"):
            body = self._json(self.request("GET", body["next"]))
            items += body.get("results", [])
        return items

    # --- endpoints ----------------------------------------------------------------------

    def obtain_token(self, *, username: str, password: str, name: str) -> str:
        body = self.post("auth/token/", {"username": username, "password": password,
                                         "name": name})
        key = (body.get("token") or body.get("key")) if isinstance(body, dict) else None
        if not isinstance(key, str) or not key:
            raise ApiError("bad_response", "the server answered without a token", 200)
        return key

    def revoke_token(self) -> None:
        """Revoke the token this client authenticates with."""
        self.request("DELETE", "auth/token/")

    def challenges(self) -> list[JSON]:
        return self.get_all("challenges/")

    def challenge(self, slug: str) -> JSON:
        return self.get(f"challenges/{segment(slug)}/")

    def accept_terms(self, slug: str) -> JSON:
        return self.post(f"challenges/{segment(slug)}/terms/accept/")

    def files(self, slug: str) -> list[JSON]:
        return self.get_all(f"challenges/{segment(slug)}/files/")

    def team_create(self, slug: str, name: str) -> JSON:
        return self.post(f"challenges/{segment(slug)}/teams/", {"name": name})

    def team_mine(self, slug: str) -> JSON:
        return self.get(f"challenges/{segment(slug)}/teams/mine/")

    def team_invite(self, slug: str, email: str = "") -> JSON:
        return self.post(f"challenges/{segment(slug)}/teams/mine/invitations/", {"email": email})

    def invitation_accept(self, token: str) -> JSON:
        return self.post(f"invitations/{segment(token)}/accept/")

    def team_leave(self, slug: str) -> JSON:
        return self.post(f"challenges/{segment(slug)}/teams/mine/leave/")

    def submissions(self, slug: str, phase: str) -> list[JSON]:
        return self.get_all(phase_path(slug, phase) + "submissions/")

    def submission(self, submission_id: str) -> JSON:
        return self.get(f"submissions/{segment(submission_id)}/")

    def select(self, submission_id: str, selected: bool = True) -> JSON:
        return self.post(f"submissions/{segment(submission_id)}/select/", {"selected": selected})

    def cancel(self, submission_id: str) -> JSON:
        return self.post(f"submissions/{segment(submission_id)}/cancel/")

    def leaderboard(self, slug: str, phase: str, board: str = "public") -> JSON:
        return self.get(phase_path(slug, phase) + "leaderboard/", board=board)

    def quota(self, slug: str, phase: str) -> JSON:
        return self.get(phase_path(slug, phase) + "quota/")

    def download(self, url: str, target: Path,
                 on_progress: Callable[[int, int | None], None] | None = None) -> int:
        """Stream `url` into `target` (via a .part file); returns the bytes written."""
        response = self.request("GET", url, stream=True)
        total = int(response.headers.get("Content-Length") or 0) or None
        partial, done = target.with_name(target.name + ".part"), 0
        try:
            with response, partial.open("wb") as out:
                for block in response.iter_content(1024 * 1024):
                    out.write(block)
                    done += len(block)
                    if on_progress:
                        on_progress(done, total)
        except requests.RequestException as error:
            partial.unlink(missing_ok=True)
            reason = describe_network_error(error)
            raise ApiError(NETWORK, f"download from {self.base_url} broke off: {reason}") from None
        partial.replace(target)
        return done


def segment(value: str) -> str:
    """One URL path segment (a slug, an id), so user input cannot change the path."""
    return quote(str(value), safe="")


def phase_path(slug: str, phase: str) -> str:
    return f"challenges/{segment(slug)}/phases/{segment(phase)}/"
