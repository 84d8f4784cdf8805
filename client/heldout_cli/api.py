"""A small client for the Heldout REST API (`/api/v1/`) on httpx, with tenacity for waiting
out the server's throttle.

Every failure, whether the network, the server or the payload, becomes one exception type,
`ApiError(code, detail, status)`, whose text is safe to print as a single line. `status` is
the HTTP status, or 0 when no answer arrived.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import tenacity

from heldout_cli import __version__

API_PREFIX = "/api/v1/"
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
# A finished upload is validated (zip/tar/CSV checks, sha256) before the server answers.
UPLOAD_READ_TIMEOUT = 600.0
MAX_THROTTLE_WAIT = 30.0
THROTTLE_ATTEMPTS = 4
DOWNLOAD_BLOCK = 1024 * 1024
NETWORK = "network_error"

JSON = Any
Sleep = Callable[[float], None]


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


# --- turning failures into one line ----------------------------------------------------------


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and everything it wraps (httpx -> httpcore -> socket errors)."""
    queue, seen = [error], set()
    while queue:
        item = queue.pop(0)
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        for inner in (item.__cause__, item.__context__, *item.args):
            if isinstance(inner, BaseException):
                queue.append(inner)


_REASONS: tuple[tuple[type[BaseException], str], ...] = (
    (ConnectionRefusedError, "connection refused"),
    (socket.gaierror, "unknown host"),
    (ConnectionResetError, "the connection was reset"),
    (httpx.TimeoutException, "timed out"),
    (TimeoutError, "timed out"),
)


def _reason(item: BaseException) -> str | None:
    for kind, text in _REASONS:
        if isinstance(item, kind):
            return text
    if isinstance(item, httpx.RemoteProtocolError) and "disconnected" in str(item):
        return "the server closed the connection"
    if isinstance(item, ssl.SSLError):
        return f"TLS error: {item.reason or item}"
    return None


def describe_network_error(error: BaseException) -> str:
    """'connection refused', 'unknown host', 'timed out', 'TLS error: ...' or the OS text."""
    causes = list(_causes(error))
    for item in causes:
        if reason := _reason(item):
            return reason
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


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def error_from_response(response: httpx.Response) -> ApiError:
    status = response.status_code
    body = _json_or_none(response)
    if isinstance(body, dict) and ("code" in body or "detail" in body):
        code = str(body.get("code") or f"http_{status}")
        detail = _flatten(body.get("detail", "")) or response.reason_phrase or "error"
        return ApiError(code, detail, status, body)
    if isinstance(body, dict) and body:  # a bare DRF validation error
        return ApiError("invalid", _flatten(body), status, body)
    path = response.request.url.path
    return ApiError(f"http_{status}",
                    f"{path} answered {status} {response.reason_phrase}".rstrip(), status)


def throttle_wait(response: httpx.Response) -> float | None:
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


def _last_response(state: tenacity.RetryCallState) -> httpx.Response:
    assert state.outcome is not None  # tenacity calls these hooks after an attempt only
    response: httpx.Response = state.outcome.result()
    return response


# --- the client --------------------------------------------------------------------------


class ApiClient:
    """`ApiClient("https://heldout.example.org", token).get("challenges/")`."""

    def __init__(self, base_url: str, token: str | None = None, *,
                 http: httpx.Client | None = None, sleep: Sleep = time.sleep) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        # Redirects are followed like a browser would; httpx drops the Authorization header
        # on a redirect to another host.
        self.http = http or httpx.Client(follow_redirects=True)
        self.http.headers.update({"User-Agent": f"heldout-cli/{__version__}",
                                  "Accept": "application/json"})
        if token:
            self.http.headers["Authorization"] = f"Token {token}"
        self._sleep = sleep

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

    def request(self, method: str, path: str, *, read_timeout: float = READ_TIMEOUT,
                stream: bool = False, **options: Any) -> httpx.Response:
        """Send one request (`options` as for httpx: json, content, files, params, headers);
        raise ApiError for no answer or a status >= 400. A 429 with a short Retry-After is
        waited out and sent again (the server's throttles)."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_result(lambda response: throttle_wait(response) is not None),
            wait=lambda state: throttle_wait(_last_response(state)) or 0.0,
            stop=tenacity.stop_after_attempt(THROTTLE_ATTEMPTS),
            before_sleep=lambda state: _last_response(state).close(),
            retry_error_callback=_last_response,
            sleep=self._sleep,
        )
        response: httpx.Response = retrying(
            partial(self._send, method, path, read_timeout, stream, options))
        if response.status_code >= 400:
            raise error_from_response(response)
        return response

    def _send(self, method: str, path: str, read_timeout: float, stream: bool,
              options: dict[str, Any]) -> httpx.Response:
        # A new request each time: httpx then reads a file body again from its start.
        timeout = httpx.Timeout(read_timeout, connect=CONNECT_TIMEOUT)
        try:
            request = self.http.build_request(method, self.url(path), timeout=timeout, **options)
            response = self.http.send(request, stream=stream)
            if response.status_code >= 400:
                response.read()  # a streamed answer too: its body says what went wrong
            return response
        except httpx.RequestError as error:
            reason = describe_network_error(error)
            raise ApiError(NETWORK, f"cannot reach {self.base_url}: {reason}") from error

    def _json(self, response: httpx.Response) -> JSON:
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

    def download(self, url: str, target: Path,
                 on_progress: Callable[[int, int | None], None] | None = None) -> int:
        """Stream `url` into `target` (via a .part file); returns the bytes written."""
        response = self.request("GET", url, stream=True)
        total = int(response.headers.get("Content-Length") or 0) or None
        partial_file, done = target.with_name(target.name + ".part"), 0
        try:
            with partial_file.open("wb") as out:
                for block in response.iter_bytes(DOWNLOAD_BLOCK):
                    out.write(block)
                    done += len(block)
                    if on_progress:
                        on_progress(done, total)
        except httpx.RequestError as error:
            partial_file.unlink(missing_ok=True)
            reason = describe_network_error(error)
            raise ApiError(NETWORK, f"download from {self.base_url} broke off: {reason}") from error
        finally:
            response.close()
        partial_file.replace(target)
        return done

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


def segment(value: str) -> str:
    """One URL path segment (a slug, an id), so user input cannot change the path."""
    return quote(str(value), safe="")


def phase_path(slug: str, phase: str) -> str:
    return f"challenges/{segment(slug)}/phases/{segment(phase)}/"
