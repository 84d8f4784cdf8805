"""A fake platform for station tests: the five station endpoints, in memory, no Django.

It offers each queued job once (first claim), serves its artefact (counting the requests),
answers heartbeats (409 for jobs marked stale) and records every request's raw body, so
tests can search exactly what left the station. Each fake platform names its station
uniquely (`north-<hex>`), so a station's start-up sweep of `heldout-st-<station>.` never
touches another test's containers.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

API = "/api/v1/station"


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakePlatform:
    token: str
    station: str = field(default_factory=lambda: f"north-{uuid.uuid4().hex[:8]}")
    poll_seconds: float = 0.2
    jobs: list[dict[str, Any]] = field(default_factory=list)       # waiting to be claimed
    artefacts: dict[int, bytes] = field(default_factory=dict)      # job -> file
    stale: set[int] = field(default_factory=set)                   # heartbeats answer 409
    requests: list[Request] = field(default_factory=list)
    results: dict[int, bytes] = field(default_factory=dict)        # job -> raw result body
    heartbeats: list[int] = field(default_factory=list)
    artefact_requests: list[int] = field(default_factory=list)     # job of each GET
    unavailable: int = 0                                           # next N answers: 503
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def container_name(self, job: int, claim: int) -> str:
        """As the platform names it: heldout-st-<station>.<job>-c<claim>."""
        return f"heldout-st-{self.station}.{job}-c{claim}"

    def offer(self, job: dict[str, Any], artefact: bytes) -> None:
        with self.lock:
            self.jobs.append(job)
            self.artefacts[int(job["job"])] = artefact

    def result(self, job: int) -> dict[str, Any]:
        return dict(json.loads(self.results[job]))

    def hellos(self) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.requests if r.path == f"{API}/hello"]

    def sent(self) -> str:
        """Everything the station sent, as text (bodies, paths and headers)."""
        return "\n".join(f"{r.method} {r.path} {json.dumps(r.headers)} "
                         f"{r.body.decode('utf-8', errors='replace')}" for r in self.requests)

    # -- request handling (called from server threads) -----------------------------------------

    def answer(self, method: str, path: str, headers: dict[str, str],
               body: bytes) -> tuple[int, Any]:
        with self.lock:
            self.requests.append(Request(method, path, headers, body))
        with self.lock:
            if self.unavailable > 0:
                self.unavailable -= 1
                return 503, {"code": "unavailable"}
        if headers.get("Authorization") != f"Station {self.token}":
            return 401, {"code": "not_authenticated"}
        url = urlsplit(path)
        parts = url.path.removeprefix(API).strip("/").split("/")
        if method == "GET" and parts[:1] == ["jobs"] and parts[2:] == ["artefact"]:
            return self._artefact(int(parts[1]), parse_qs(url.query))
        payload = json.loads(body or b"{}")
        if parts == ["hello"]:
            return 200, {"station": self.station, "poll_seconds": self.poll_seconds}
        if parts == ["jobs", "claim"]:
            return self._claim()
        if len(parts) == 3 and parts[0] == "jobs" and parts[2] == "heartbeat":
            return self._heartbeat(int(parts[1]), payload)
        if len(parts) == 3 and parts[0] == "jobs" and parts[2] == "result":
            return self._result(int(parts[1]), body)
        return 404, {"code": "not_found"}

    def _claim(self) -> tuple[int, Any]:
        with self.lock:
            if not self.jobs:
                return 204, None
            return 200, self.jobs.pop(0)

    def _artefact(self, job: int, query: dict[str, list[str]]) -> tuple[int, Any]:
        with self.lock:
            self.artefact_requests.append(job)
        if job not in self.artefacts or not query.get("claim"):
            return 404, {"code": "not_found"}
        return 200, self.artefacts[job]

    def _heartbeat(self, job: int, payload: dict[str, Any]) -> tuple[int, Any]:
        with self.lock:
            self.heartbeats.append(job)
            if job in self.stale:
                return 409, {"code": "stale_job"}
        return 200, {"lease_seconds": 3}

    def _result(self, job: int, body: bytes) -> tuple[int, Any]:
        with self.lock:
            if job in self.stale:
                return 409, {"code": "stale_job"}
            self.results[job] = body
        return 200, {"accepted": True}


def serve(platform: FakePlatform) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._handle("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._handle("POST")

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, answer = platform.answer(method, self.path, dict(self.headers.items()),
                                             body)
            data = answer if isinstance(answer, bytes) else (
                b"" if answer is None else json.dumps(answer).encode())
            self.send_response(status)
            kind = "application/octet-stream" if isinstance(answer, bytes) else (
                "application/json")
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if status != 204:
                self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    platform.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True, name="fake-platform").start()
    return server
