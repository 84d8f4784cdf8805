"""Issue 20, attack 8: four slow connections stopped the site. Gunicorn's two sync workers each
read a request from its socket themselves, so four sockets trickling their headers held both
and /healthz went unanswered for over 100 s.

The stack here is production's: gunicorn with docker/gunicorn.conf.py (two sync workers, as in
the attack) on a fresh PostgreSQL database with DEBUG off, behind Debian's nginx (the package
scripts/system_deps.sh installs) running docker/nginx/nginx.conf with this test's ports and
folders. Behind nginx, slow clients (headers or body a byte a second, four and then fifty) leave
/healthz answering in under a second; the same four against a gunicorn reached directly stop
it. A second of /healthz is the issue's own bar: a functional bound, not a benchmark.
"""

from __future__ import annotations

import http.client
import json
import os
import pwd
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import pytest
import requests
from django.urls import reverse

from tests.conftest import REPO
from tests.production.stack import (
    Processes,
    free_port,
    fresh_database,
    gunicorn_argv,
    manage,
    production_environment,
    wait_healthy,
)

NGINX = Path("/usr/sbin/nginx")  # Debian's package (scripts/system_deps.sh)
NGINX_CONF = REPO / "docker" / "nginx" / "nginx.conf"
TEMP_FOLDERS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
HEALTH_BOUND_S = 1.0
# An address the proxy is told about by a trusted hop (this test connects from loopback), and
# one it does not trust: Linux answers all of 127/8 on the loopback interface.
UNTRUSTED_SOURCE = "127.0.0.2"


def conf_value(pattern: str) -> int:
    match = re.search(pattern, NGINX_CONF.read_text())
    assert match, f"{pattern!r} not in {NGINX_CONF}"
    return int(match.group(1))


HEADER_TIMEOUT_S = conf_value(r"\bclient_header_timeout (\d+)s;")
PER_ADDRESS = conf_value(r"\blimit_conn per_address (\d+);")
# Longer than nginx's header timeout, so that the header tricklers are seen cut off.
WINDOW_S = HEADER_TIMEOUT_S + 3


def render_nginx_conf(*, port: int, upstream: int, folder: Path) -> str:
    """docker/nginx/nginx.conf with this test's ports, user and temporary folders."""
    text = NGINX_CONF.read_text()
    temp_paths = "".join(f"    {kind}_temp_path {folder / kind};\n" for kind in TEMP_FOLDERS)
    replacements = {
        # As root, workers would run as www-data, who cannot enter pytest's private folders.
        "user www-data;": f"user {pwd.getpwuid(os.getuid()).pw_name};",
        "listen 80 default_server;": f"listen 127.0.0.1:{port} default_server;",
        "http://web:8000": f"http://127.0.0.1:{upstream}",
        "http {\n": "http {\n" + temp_paths,
    }
    for old, new in replacements.items():
        assert text.count(old) == 1, f"{old!r} should appear once in {NGINX_CONF}"
        text = text.replace(old, new)
    return text


@dataclass
class Stack:
    proxied: int  # nginx, in front of gunicorn started with HELDOUT_BEHIND_PROXY=1
    bare: int  # gunicorn alone, without the proxy setting: the attack's set-up
    processes: Processes


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    assert NGINX.is_file(), "nginx is missing: run scripts/system_deps.sh"
    # The suite's own Redis databases: nothing is queued here, and each test empties the
    # cache (tests/conftest.py), where the throttles count.
    redis_url, cache_url = os.environ.get("REDIS_URL"), os.environ.get("HELDOUT_CACHE_URL")
    assert redis_url and cache_url, "set REDIS_URL and HELDOUT_CACHE_URL"
    folder = tmp_path_factory.mktemp("stack")
    with fresh_database() as database_url:
        env = production_environment(folder=folder, database_url=database_url,
                                     redis_url=redis_url, cache_url=cache_url)
        manage(env, "migrate", "--noinput")
        manage(env, "collectstatic", "--noinput")
        processes = Processes(env, folder / "logs")
        web, bare, proxied = free_port(), free_port(), free_port()
        for kind in TEMP_FOLDERS:
            (folder / kind).mkdir()
        conf = folder / "nginx.conf"
        conf.write_text(render_nginx_conf(port=proxied, upstream=web, folder=folder))
        try:
            processes.start("web", *gunicorn_argv(web), env={**env, "HELDOUT_BEHIND_PROXY": "1"})
            processes.start("bare", *gunicorn_argv(bare))
            processes.start("nginx", str(NGINX), "-p", f"{folder}/", "-c", str(conf),
                            "-g", f"daemon off; pid {folder / 'nginx.pid'};")
            for port in (proxied, bare):
                wait_healthy(f"http://127.0.0.1:{port}", processes)
                warm_up(port)
            yield Stack(proxied=proxied, bare=bare, processes=processes)
            processes.assert_alive()
        finally:
            processes.stop()


def warm_up(port: int) -> None:
    """Each worker's first request imports the views (seconds on a busy machine): ask
    /healthz a few times at once, so that every worker has served one before the timing."""
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            statuses = pool.map(lambda _: requests.get(f"http://127.0.0.1:{port}/healthz",
                                                       timeout=60).status_code, range(4))
            assert list(statuses) == [200] * 4


# --- slow clients --------------------------------------------------------------------------


@dataclass
class SlowClient:
    """One connection that sends the rest of its request a byte at a time."""

    sock: socket.socket
    rest: bytes
    answer: bytes = b""
    closed: bool = False  # by the server: end of stream, reset or broken pipe

    def tick(self) -> None:
        if self.closed:
            return
        try:
            if not self._read():
                self.closed = True
            elif self.rest:
                self.sock.send(self.rest[:1])
                self.rest = self.rest[1:]
        except OSError:
            self.closed = True

    def _read(self) -> bool:
        """Keep what the server sent; False once it closed the connection."""
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return True  # nothing yet
        self.answer += data
        return bool(data)


@dataclass
class SlowClients:
    """`count` connections sending `request` at one byte a second after its first `at_once`
    bytes, from a thread of their own, while the test asks /healthz."""

    port: int
    request: bytes
    count: int
    at_once: int
    clients: list[SlowClient] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SlowClients:
        for _ in range(self.count):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            sock.sendall(self.request[:self.at_once])
            sock.setblocking(False)
            self.clients.append(SlowClient(sock, self.request[self.at_once:]))
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        for client in self.clients:
            client.sock.close()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            for client in self.clients:
                client.tick()

    def closed(self) -> int:
        return sum(client.closed for client in self.clients)

    def answered(self, status: int) -> int:
        return sum(client.answer.startswith(f"HTTP/1.1 {status} ".encode())
                   for client in self.clients)


def header_trickle() -> bytes:
    """A request whose header arrives a byte a second: it never ends within the test."""
    return (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow-headers\r\n"
            b"X-Padding: " + b"a" * 64 + b"\r\n\r\n")


def body_trickle(forwarded_for: str | None = None) -> tuple[bytes, int]:
    """A password login whose header comes at once and whose body a byte a second; and the
    length of the header."""
    body = json.dumps({"username": "slow", "password": "b" * 600}).encode()
    head = (f"POST /api/v1/auth/token/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            + (f"X-Forwarded-For: {forwarded_for}\r\n" if forwarded_for else "")
            + "\r\n").encode()
    return head + body, len(head)


def assert_healthy_throughout(port: int, seconds: float) -> int:
    """GET /healthz twice a second for `seconds`: every answer a 200 within a second.
    Returns how many were asked."""
    asked, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.monotonic()
        try:
            response = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=HEALTH_BOUND_S)
        except requests.Timeout:
            pytest.fail(f"/healthz unanswered after {HEALTH_BOUND_S} s (probe {asked + 1})")
        took = time.monotonic() - start
        assert response.status_code == 200, response.text
        assert took < HEALTH_BOUND_S, f"/healthz took {took:.2f} s"
        asked += 1
        time.sleep(0.5)
    return asked


def test_four_slow_clients_leave_healthz_answering_behind_nginx(stack: Stack) -> None:
    body, head = body_trickle()
    with SlowClients(stack.proxied, header_trickle(), count=4, at_once=1) as headers, \
            SlowClients(stack.proxied, body, count=4, at_once=head) as bodies:
        asked = assert_healthy_throughout(stack.proxied, WINDOW_S)
    assert asked >= WINDOW_S  # at least one a second
    # nginx cut the header tricklers off after client_header_timeout and still holds the
    # body tricklers (a byte a second is within client_body_timeout), none in a worker.
    assert headers.closed() == 4
    assert bodies.closed() == 0


def test_fifty_slow_clients_from_one_address_leave_healthz_answering(stack: Stack) -> None:
    body, head = body_trickle(forwarded_for="198.51.100.50")
    with SlowClients(stack.proxied, header_trickle(), count=50, at_once=1) as headers, \
            SlowClients(stack.proxied, body, count=50, at_once=head) as bodies:
        assert_healthy_throughout(stack.proxied, WINDOW_S)
    assert headers.closed() == 50
    # One address holds at most PER_ADDRESS requests in progress; the rest are refused at once.
    assert bodies.answered(429) == 50 - PER_ADDRESS


def test_the_same_four_slow_clients_stop_gunicorn_without_the_proxy(stack: Stack) -> None:
    """The attack, as it was: both sync workers wait on slow headers, /healthz waits behind
    them (for up to gunicorn's 120 s worker timeout, then the next slow client comes)."""
    with SlowClients(stack.bare, header_trickle(), count=4, at_once=1):
        time.sleep(1)
        answered, end = [], time.monotonic() + 5
        while time.monotonic() < end:
            try:
                answered.append(requests.get(f"http://127.0.0.1:{stack.bare}/healthz",
                                             timeout=HEALTH_BOUND_S).status_code)
            except requests.Timeout:
                pass
        assert answered == []
    # The slow clients gone, the same workers answer again.
    assert requests.get(f"http://127.0.0.1:{stack.bare}/healthz", timeout=10).status_code == 200


# --- what the proxy passes on --------------------------------------------------------------


def ask(port: int, method: str, path: str, *, headers: dict[str, str] | None = None,
        body: bytes = b"", source: str = "127.0.0.1") -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


def secure_in_django(port: int, *, source: str = "127.0.0.1") -> bool:
    """Whether Django took a request claiming X-Forwarded-Proto: https as HTTPS: CSRF then
    asks for a Referer before anything else (Django's 403 page says which check failed)."""
    status, page = ask(port, "POST", "/accounts/login/", source=source,
                       headers={"X-Forwarded-Proto": "https"})
    assert status == 403 and ("Referer header" in page or "CSRF cookie" in page), page
    return "Referer header" in page


def login_statuses(port: int, forwarded_for: list[str], *, source: str = "127.0.0.1"
                   ) -> list[int]:
    """Password logins (throttled per client address), one per X-Forwarded-For value."""
    return [ask(port, "POST", "/api/v1/auth/token/", body=b"{}", source=source,
                headers={"Content-Type": "application/json", "X-Forwarded-For": address})[0]
            for address in forwarded_for]


def test_scheme_and_address_come_from_the_proxy_only(stack: Stack) -> None:
    # From a trusted hop (the TLS proxy: loopback here), nginx passes the scheme on and
    # Django, told it is behind a proxy, believes it.
    assert secure_in_django(stack.proxied)
    # Anyone else's claim is replaced by nginx; gunicorn and Django without the setting
    # ignore it, even from loopback.
    assert not secure_in_django(stack.proxied, source=UNTRUSTED_SOURCE)
    assert not secure_in_django(stack.bare)

    rate = 10  # HELDOUT_API_RATE_LOGIN's default, per minute and address
    # The throttles count per client as the trusted hop names it...
    statuses = login_statuses(stack.proxied, ["192.0.2.10"] * (rate + 1) + ["192.0.2.11"])
    assert statuses[:rate] == [400] * rate and statuses[rate:] == [429, 400]
    # ...and a client naming itself anew each time is still one address.
    for port, source in ((stack.proxied, UNTRUSTED_SOURCE), (stack.bare, "127.0.0.1")):
        statuses = login_statuses(port, [f"203.0.113.{n}" for n in range(rate + 1)],
                                  source=source)
        assert statuses == [400] * rate + [429], (port, statuses)


def test_healthz_and_static_files_are_served_through_nginx(stack: Stack) -> None:
    health = requests.get(f"http://127.0.0.1:{stack.proxied}/healthz", timeout=10)
    assert health.status_code == 200 and health.headers["Server"] == "nginx"
    assert health.json()["status"] == "ok"
    css = requests.get(f"http://127.0.0.1:{stack.proxied}/static/heldout.css", timeout=10)
    assert css.status_code == 200 and css.headers.get("Content-Encoding") == "gzip"
    assert css.content == (REPO / "static" / "heldout.css").read_bytes()
    stack.processes.assert_alive()


# --- request sizes -------------------------------------------------------------------------

MB = 1024**2


def first_answer(port: int, method: str, path: str, length: int) -> int:
    """What nginx says to a request announcing `length` bytes of body and asking to go on
    (Expect: 100-continue) before sending any: 100, or 413 when it is too large there."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}"
                     f"\r\nContent-Type: application/octet-stream\r\nExpect: 100-continue"
                     f"\r\n\r\n".encode())
        status_line = sock.makefile("rb").readline()
    return int(status_line.split()[1])


def test_each_path_takes_bodies_up_to_its_largest_request(stack: Stack) -> None:
    submissions = reverse("api:submission-list", kwargs={"slug": "s", "phase": "p"})
    form = reverse("submissions:upload", kwargs={"slug": "s", "phase": "p"})
    chunk = reverse("api:upload-detail", kwargs={"id": uuid.uuid4()}) + "?offset=0"
    direct, image = 64 * MB, 4096 * MB  # HELDOUT_MAX_DIRECT_UPLOAD_BYTES; the largest image
    cases = [
        ("PUT", chunk, 8 * MB, 100),  # a resumable upload's chunk
        ("POST", reverse("api:auth-token"), 11 * MB, 413),
        ("POST", "/healthz", 11 * MB, 413),
        ("POST", submissions, direct + 64 * 1024, 100),  # a direct upload and its form
        ("POST", submissions, direct + 2 * MB, 413),
        ("POST", form, direct + 64 * 1024, 100),
        ("POST", reverse("admin:challenges_challenge_import"), image + 64 * 1024, 100),
        ("POST", reverse("admin:challenges_challenge_import"), image + 5 * MB, 413),
    ]
    answers = [(method, path, length, first_answer(stack.proxied, method, path, length))
               for method, path, length, _ in cases]
    assert answers == [(method, path, length, expected)
                       for method, path, length, expected in cases]
