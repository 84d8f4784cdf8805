"""The platform's station API, seen from the station: five calls over HTTP(S), JSON bodies,
`Authorization: Station <token>`.

Connection errors, timeouts, 429 and 5xx answers are retried with capped exponential
backoff; 401 raises `Unauthorized` (a bad or revoked token), 409 on a job raises
`StaleJob` (the job was offered again elsewhere). The token is never logged: it only
appears in the request header.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

logger = logging.getLogger(__name__)

API = "/api/v1/station"
TIMEOUT = (10.0, 60.0)  # (connect, read) seconds
BACKOFF_FIRST_S = 0.5
BACKOFF_CAP_S = 30.0
RETRIES = 6              # ~1 minute of backoff
RESULT_RETRIES = 12      # a computed result is worth ~5 minutes of trying
HEARTBEAT_RETRIES = 2    # the next heartbeat is due soon anyway
DOWNLOAD_CHUNK = 1024 * 1024


class PlatformError(Exception):
    """An answer the station cannot use (a 4xx other than 401/409, bad JSON)."""


class PlatformUnavailable(PlatformError):
    """No usable answer after the retries (connection errors, 5xx)."""


class Unauthorized(PlatformError):
    """401: the platform does not know this token."""


class StaleJob(PlatformError):
    """409 (or 404/410 for the artefact): this claim of the job is no longer current."""


class Stopped(Exception):
    """The station is shutting down; the call was abandoned."""


@dataclass(frozen=True)
class Download:
    path: Path
    size: int
    sha256: str


class Platform:
    """One platform, one station token. `stop` interrupts backoff waits and downloads."""

    def __init__(self, url: str, token: str, *, stop: threading.Event | None = None,
                 session: requests.Session | None = None) -> None:
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Station {token}", "Accept": "application/json"}
        self._stop = stop or threading.Event()
        self._shared = session
        self._local = threading.local()  # a session per thread (main, heartbeat)

    @property
    def _session(self) -> requests.Session:
        if self._shared is not None:
            return self._shared
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    # -- the five calls ----------------------------------------------------------------------

    def hello(self, datasets: list[dict[str, Any]], challenges: list[str]) -> dict[str, Any]:
        """Report the datasets and the challenges (slugs) the station serves."""
        response = self._call("POST", f"{API}/hello", {"version": 1, "datasets": datasets,
                                                       "challenges": challenges})
        return self._json(response, "hello", 200)

    def claim(self) -> dict[str, Any] | None:
        """The next job, or None when there is nothing to do (204)."""
        response = self._call("POST", f"{API}/jobs/claim", {})
        if response.status_code == 204:
            return None
        return self._json(response, "claim", 200)

    def heartbeat(self, job: int, claim: int) -> float | None:
        """Extend the lease; its new length in seconds (None if not given)."""
        response = self._call("POST", f"{API}/jobs/{job}/heartbeat", {"claim": claim},
                              retries=HEARTBEAT_RETRIES, stale=True)
        lease = self._json(response, "heartbeat", 200).get("lease_seconds")
        return float(lease) if isinstance(lease, (int, float)) else None

    def post_result(self, job: int, body: dict[str, Any]) -> bool:
        """True when the platform accepted the result; False for a stale claim (409)."""
        try:
            response = self._call("POST", f"{API}/jobs/{job}/result", body,
                                  retries=RESULT_RETRIES, stale=True)
        except StaleJob:
            return False
        return bool(self._json(response, "result", 200).get("accepted", True))

    def download(self, path: str, dest: Path, *, max_bytes: int) -> Download:
        """Stream `GET {url}{path}` into `dest`, hashing as it comes; at most `max_bytes`
        + 1 bytes are written (enough to tell the file is larger than announced)."""
        if not path.startswith("/") or path.startswith("//"):
            raise PlatformError("the artefact path is not a path on the platform")
        for retry in range(RETRIES + 1):
            try:
                return self._download_once(path, dest, max_bytes)
            except requests.RequestException as error:
                if retry == RETRIES:
                    raise PlatformUnavailable(f"downloading the artefact failed: {error}") from None
                self._backoff(retry, f"downloading the artefact: {error}")
        raise AssertionError("unreachable")

    # -- internals ---------------------------------------------------------------------------

    def _download_once(self, path: str, dest: Path, max_bytes: int) -> Download:
        with self._session.get(self.url + path, headers=self._headers, stream=True,
                               timeout=TIMEOUT) as response:
            # A job gone from the platform is as stale as a re-offered one.
            self._check_status(response, stale=(404, 409, 410), ok=(200,))
            digest, size = hashlib.sha256(), 0
            with dest.open("wb") as sink:
                for chunk in response.iter_content(DOWNLOAD_CHUNK):
                    if self._stop.is_set():
                        raise Stopped
                    chunk = chunk[: max_bytes + 1 - size]
                    sink.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    if size > max_bytes:
                        break
        return Download(dest, size, digest.hexdigest())

    def _call(self, method: str, path: str, body: dict[str, Any], *, retries: int = RETRIES,
              stale: bool = False) -> requests.Response:
        for retry in range(retries + 1):
            if self._stop.is_set():
                raise Stopped
            try:
                response = self._session.request(method, self.url + path, json=body,
                                                 headers=self._headers, timeout=TIMEOUT)
            except requests.RequestException as error:
                problem = f"{type(error).__name__}"
            else:
                if not _retryable(response.status_code):
                    self._check_status(response, stale=(409,) if stale else ())
                    return response
                problem = f"HTTP {response.status_code}"
            if retry == retries:
                raise PlatformUnavailable(f"{method} {path}: {problem}")
            self._backoff(retry, f"{method} {path}: {problem}")
        raise AssertionError("unreachable")

    def _backoff(self, retry: int, what: str) -> None:
        delay = min(BACKOFF_FIRST_S * 2**retry, BACKOFF_CAP_S)
        logger.warning("%s; retrying in %.1f s", what, delay)
        if self._stop.wait(delay):
            raise Stopped

    @staticmethod
    def _check_status(response: requests.Response, *, stale: tuple[int, ...],
                      ok: tuple[int, ...] = (200, 204)) -> None:
        status = response.status_code
        if status == 401:
            raise Unauthorized("the platform refused the station token (HTTP 401)")
        if status in stale:
            raise StaleJob(_code(response) or "stale_job")
        if status not in ok:
            raise PlatformError(f"{response.request.method} {response.request.path_url}: "
                                f"HTTP {status} {_excerpt(response)}")

    @staticmethod
    def _json(response: requests.Response, what: str, status: int) -> dict[str, Any]:
        if response.status_code != status:
            raise PlatformError(f"{what}: HTTP {response.status_code} {_excerpt(response)}")
        try:
            value = response.json()
        except ValueError:
            raise PlatformError(f"{what}: the answer is not JSON") from None
        if not isinstance(value, dict):
            raise PlatformError(f"{what}: the answer is not a JSON object")
        return value


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


def _code(response: requests.Response) -> str:
    try:
        value = response.json()
    except ValueError:
        return ""
    return str(value.get("code", "")) if isinstance(value, dict) else ""


def _excerpt(response: requests.Response) -> str:
    return response.text[:300].replace("\n", " ")

