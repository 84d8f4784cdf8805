"""Benchmark: memory of the web process while a large model is uploaded.

Run from the repository root (needs ~2.5 GB of free disk in the temp dir, about a minute):

    python bench/bench_upload_memory.py                   # 2 GB chunked, 200 MB multipart
    python bench/bench_upload_memory.py --chunked-mb 256 --multipart-mb 32   # a quick run

What it does: creates a temporary HELDOUT_VAR_DIR with a fresh SQLite database (`migrate`),
sets up a user, a challenge with an open phase accepting `image` submissions and a team
(`manage.py shell -c`), starts a real development server (`manage.py runserver --noreload`
on a free 127.0.0.1 port, DJANGO_DEBUG=1) and logs in through the allauth login page with
`requests`. Then:

1. the resumable chunked API the browser uses: POST /api/v1/.../uploads/ (start), PUT 8 MB chunks
   at ?offset= (generated on the fly from one reused block of zeros, so the client holds
   one chunk at most), then POST .../finish/. The zeros are not a Docker archive, so finish
   answers 400 invalid_upload after hashing the file; the upload is what is measured.
2. the plain multipart form (no JavaScript) with a 200 MB file, streamed by the client.

Measured: the server process's resident set size (psutil if installed, else VmRSS from
/proc/<pid>/status) sampled every 0.1 s. Baseline = RSS after a warm-up request, just
before the transfer; peak = the highest sample during the transfer (and, separately,
during finish); growth = peak - baseline. Throughput = bytes / wall time of the transfer
over loopback (disk-bound). Target (issue): under 100 MB growth for a 2 GB upload.
The temporary directory and the server process are removed at the end, even on errors.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
MB = 1024**2
BLOCK = bytes(MB)  # the one block of zeros every generated body is cut from
USERNAME, PASSWORD = "bench", "bench-upload-memory-1"
SLUG, PHASE = "bench-upload", "open"

SETUP = f"""
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.utils import timezone
from challenges.models import Challenge, Membership, Phase, Team, TermsAcceptance
user = get_user_model().objects.create_user({USERNAME!r}, "bench@example.org", {PASSWORD!r})
challenge = Challenge.objects.create(slug={SLUG!r}, title="[BENCH] Upload memory")
Phase.objects.create(
    challenge=challenge, slug={PHASE!r}, title="Open", submission_kinds=["image"],
    opens_at=timezone.now() - timedelta(days=1), closes_at=timezone.now() + timedelta(days=1),
    quota_per_day=100, quota_total=100, quota_concurrent=100)
TermsAcceptance.objects.create(user=user, challenge=challenge, version=challenge.terms_version)
team = Team.objects.create(challenge=challenge, name="Bench", captain=user)
Membership.objects.create(team=team, user=user, challenge=challenge)
"""


class Zeros:
    """A request body of `size` zero bytes, produced 1 MB at a time. `__len__` lets requests
    send a Content-Length (the dev server does not accept chunked transfer encoding)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        left = self.size
        while left > 0:
            piece = BLOCK[: min(MB, left)]
            left -= len(piece)
            yield piece


class Multipart:
    """A streamed multipart/form-data body: small fields, then `size` zero bytes as `file`."""

    def __init__(self, fields: dict[str, str], filename: str, size: int) -> None:
        self.boundary = uuid.uuid4().hex
        parts = [
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
            for k, v in fields.items()
        ]
        parts.append(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        )
        self.head = "".join(parts).encode()
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.file = Zeros(size)

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return len(self.head) + len(self.file) + len(self.tail)

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        yield from self.file
        yield self.tail


def rss_bytes(pid: int) -> int:
    try:
        import psutil
    except ImportError:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS for process {pid}") from None
    return int(psutil.Process(pid).memory_info().rss)


@dataclass
class Sampler:
    """Samples a process's RSS every `interval` seconds in a background thread."""

    pid: int
    interval: float = 0.1
    samples: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), rss_bytes(self.pid)))
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self, since: float, until: float) -> int:
        inside = [rss for at, rss in self.samples if since <= at <= until]
        return max(inside) if inside else rss_bytes(self.pid)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, check=True,
                   stdout=subprocess.DEVNULL)


@contextmanager
def dev_server(workdir: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    (workdir / "tmp").mkdir()
    (workdir / "var").mkdir()  # settings do not create HELDOUT_VAR_DIR; SQLite needs it
    env.update(DJANGO_DEBUG="1", HELDOUT_VAR_DIR=str(workdir / "var"),
               TMPDIR=str(workdir / "tmp"), HELDOUT_LOG_LEVEL="WARNING",
               PYTHONUNBUFFERED="1")
    manage(env, "migrate", "--noinput")
    manage(env, "shell", "-c", SETUP)
    port = free_port()
    log = (workdir / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(server, base, workdir / "server.log")
        yield server, base
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def wait_until_up(server: subprocess.Popen[bytes], base: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the dev server exited:\n{log.read_text()[-2000:]}")
        try:
            if requests.get(f"{base}/accounts/login/", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the dev server did not start within 60 s")


def logged_in(base: str) -> requests.Session:
    http = requests.Session()
    page = http.get(f"{base}/accounts/login/", timeout=10)
    page.raise_for_status()
    answer = http.post(f"{base}/accounts/login/", timeout=10, allow_redirects=False, data={
        "login": USERNAME, "password": PASSWORD, "csrfmiddlewaretoken": http.cookies["csrftoken"]})
    if answer.status_code != 302 or "sessionid" not in http.cookies:
        raise RuntimeError(f"login failed ({answer.status_code})")
    return http


def csrf(http: requests.Session) -> dict[str, str]:
    return {"X-CSRFToken": http.cookies["csrftoken"]}


def start_upload(http: requests.Session, base: str, size: int) -> str:
    answer = http.post(f"{base}/api/v1/challenges/{SLUG}/phases/{PHASE}/uploads/",
                       headers=csrf(http),
                       json={"kind": "image", "filename": "zeros.tar", "size": size}, timeout=30)
    if answer.status_code != 201:
        raise RuntimeError(f"start refused: {answer.status_code} {answer.text[:300]}")
    return str(answer.json()["id"])


def put_chunks(http: requests.Session, base: str, uid: str, size: int, chunk: int) -> None:
    headers = {**csrf(http), "Content-Type": "application/octet-stream"}
    for offset in range(0, size, chunk):
        body = Zeros(min(chunk, size - offset))
        answer = http.put(f"{base}/api/v1/uploads/{uid}/", params={"offset": offset}, data=body,
                          headers=headers, timeout=120)
        if answer.status_code != 200 or answer.json()["received"] != offset + len(body):
            raise RuntimeError(f"chunk at {offset}: {answer.status_code} {answer.text[:300]}")


@dataclass
class Measure:
    name: str
    size: int
    baseline: int
    peak: int
    seconds: float
    status: str

    def row(self) -> str:
        growth = (self.peak - self.baseline) / MB
        speed = self.size / MB / self.seconds if self.seconds else 0.0
        return (f"{self.name:<28}{self.baseline / MB:>10.1f}{self.peak / MB:>10.1f}"
                f"{growth:>10.1f}{self.size / MB:>11,.0f}{speed:>10.0f}  {self.status}")


def settle(sampler: Sampler, seconds: float = 1.0) -> int:
    """RSS just before a transfer: the highest sample over a quiet second."""
    since = time.monotonic()
    time.sleep(seconds)
    return sampler.peak(since, time.monotonic())


def measure_chunked(http: requests.Session, base: str, sampler: Sampler, size: int,
                    chunk: int) -> list[Measure]:
    uid = start_upload(http, base, size)
    baseline = settle(sampler)
    began = time.monotonic()
    put_chunks(http, base, uid, size, chunk)
    sent = time.monotonic()
    answer = http.post(f"{base}/api/v1/uploads/{uid}/finish/", headers=csrf(http), timeout=600)
    done = time.monotonic()
    code = answer.json().get("code", "") if answer.headers.get("Content-Type", "").startswith(
        "application/json") else ""
    return [
        Measure(f"chunked PUT x {chunk // MB} MB", size, baseline, sampler.peak(began, sent),
                sent - began, "all chunks 200"),
        Measure("chunked finish (hash+check)", size, baseline, sampler.peak(sent, done),
                done - sent, f"finish -> {answer.status_code} {code}".rstrip()),
    ]


def measure_multipart(http: requests.Session, base: str, sampler: Sampler,
                      size: int) -> Measure:
    body = Multipart({"kind": "image", "csrfmiddlewaretoken": http.cookies["csrftoken"]},
                     "zeros.tar", size)
    baseline = settle(sampler)
    began = time.monotonic()
    answer = http.post(f"{base}/challenges/{SLUG}/phases/{PHASE}/submit/", data=body,
                       headers={**csrf(http), "Content-Type": body.content_type,
                                "Accept": "application/json"}, timeout=600)
    done = time.monotonic()
    code = answer.json().get("code", "") if answer.status_code == 400 else ""
    return Measure("multipart form POST", size, baseline, sampler.peak(began, done),
                   done - began, f"-> {answer.status_code} {code}".rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunked-mb", type=int, default=2048)
    parser.add_argument("--chunk-mb", type=int, default=8)
    parser.add_argument("--multipart-mb", type=int, default=200)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="heldout-bench-upload-"))
    try:
        with dev_server(workdir) as (server, base):
            http = logged_in(base)
            sampler = Sampler(server.pid)
            try:
                warm = start_upload(http, base, MB)  # imports and first queries happen here
                put_chunks(http, base, warm, MB, MB)
                rows = measure_chunked(http, base, sampler, args.chunked_mb * MB,
                                       args.chunk_mb * MB)
                rows.append(measure_multipart(http, base, sampler, args.multipart_mb * MB))
            finally:
                sampler.stop()
        source = "psutil" if _has_psutil() else "/proc/<pid>/status VmRSS"
        report(rows, rss_source=f"{source} ({len(sampler.samples)} samples)")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _has_psutil() -> bool:
    try:
        import psutil  # noqa: F401
    except ImportError:
        return False
    return True


def report(rows: list[Measure], *, rss_source: str) -> None:
    print(f"Server RSS sampled every 0.1 s from {rss_source}; runserver --noreload, SQLite.")
    print(f"{'path':<28}{'base MB':>10}{'peak MB':>10}{'growth MB':>10}{'bytes MB':>11}"
          f"{'MB/s':>10}  result")
    for row in rows:
        print(row.row())
    worst = max(r.peak - r.baseline for r in rows[:2]) / MB
    verdict = "meets" if worst < 100 else "MISSES"
    print(f"Chunked upload growth {worst:.1f} MB: {verdict} the target of < 100 MB.")
    print(f"FIGURE\tweb process growth during a chunked upload\t{worst:.1f}\tMB\t< 100 MB",
          flush=True)


if __name__ == "__main__":
    main()
