"""Submitting a file: kind detection, a streamed multipart POST for small files, and the
resumable chunked protocol for large ones.

Safety against double submission: every attempt carries an Idempotency-Key. The key (and,
for chunked uploads, the upload session) is remembered in the config folder until the
server has answered, so even re-running `heldout submit` after a crash or Ctrl-C reuses
it: the server then returns the submission it already made, or the upload resumes from
the server's offset rather than starting again.
"""

from __future__ import annotations

import json
import os
import tarfile
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from client import config
from client.api import UPLOAD_READ_TIMEOUT, ApiClient, ApiError, phase_path, segment

CHUNKED_THRESHOLD = 32 * 1024 * 1024
CHUNK_SIZE = 8 * 1024 * 1024
MAX_RETRIES = 5  # consecutive failed attempts without progress
BLOCK = 256 * 1024
RETRY_STATUSES = (502, 503, 504)

ProgressFn = Callable[[int], None]


# --- kind detection ----------------------------------------------------------------------


def detect_kind(path: Path) -> str | None:
    """zip -> bundle, tar or tar.gz -> image, CSV -> predictions; None if unsure.

    The bytes decide before the name does: a `model.zip` that is really a tar is an image.
    """
    with path.open("rb") as handle:
        head = handle.read(512)
    if zipfile.is_zipfile(path):
        return "bundle"
    if head[:2] == b"\x1f\x8b" or _is_tar(path, head):
        return "image"
    name = path.name.lower()
    if name.endswith(".csv") or _looks_like_csv(head):
        return "predictions"
    return None


def _is_tar(path: Path, head: bytes) -> bool:
    if head[257:262] == b"ustar":
        return True
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def _looks_like_csv(head: bytes) -> bool:
    try:
        first = head.decode("utf-8-sig").splitlines()[0]
    except (UnicodeDecodeError, IndexError):
        return False
    return first.strip().lower().startswith("id,")


# --- remembered attempts -----------------------------------------------------------------


def _pending_path() -> Path:
    return config.config_dir() / "pending-uploads.json"


def _pending_all() -> dict[str, dict[str, str]]:
    try:
        data = json.loads(_pending_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _pending_write(data: dict[str, dict[str, str]]) -> None:
    # Best effort: a read-only config folder only loses the cross-run memory.
    try:
        config.config_dir().mkdir(mode=0o700, parents=True, exist_ok=True)
        config.write_private(_pending_path(), data)
    except OSError:
        pass


@dataclass
class Attempt:
    """What is remembered for one file in one phase until the server has answered."""

    slot: str
    idempotency_key: str
    upload_id: str | None = None

    @classmethod
    def for_file(cls, client: ApiClient, slug: str, phase: str, path: Path) -> Attempt:
        stat = path.stat()
        slot = "|".join((client.base_url, slug, phase, str(path.resolve()), str(stat.st_size),
                         str(stat.st_mtime_ns)))
        known = _pending_all().get(slot, {})
        return cls(slot=slot, idempotency_key=known.get("idempotency_key") or str(uuid.uuid4()),
                   upload_id=known.get("upload_id"))

    def remember(self) -> None:
        data = _pending_all()
        data[self.slot] = {"idempotency_key": self.idempotency_key,
                           **({"upload_id": self.upload_id} if self.upload_id else {})}
        _pending_write(data)

    def forget(self) -> None:
        data = _pending_all()
        if data.pop(self.slot, None) is not None:
            _pending_write(data)


# --- the streamed multipart body ---------------------------------------------------------


class MultipartFile:
    """A multipart/form-data body read from disk block by block, with progress.

    requests would otherwise build the whole body in memory; with `__len__` it sends a
    Content-Length, and with `read` urllib3 streams it.
    """

    def __init__(self, path: Path, fields: dict[str, str], on_progress: ProgressFn | None) -> None:
        self.boundary = uuid.uuid4().hex
        self.path, self.on_progress = path, on_progress
        self.head = self._head(fields)
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.size = path.stat().st_size
        self._handle = path.open("rb")
        self._stage, self._sent = 0, 0

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def _head(self, fields: dict[str, str]) -> bytes:
        parts = [
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n" for name, value in fields.items()
        ]
        filename = self.path.name.replace('"', "_").replace("\r", "_").replace("\n", "_")
        parts.append(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        )
        return "".join(parts).encode()

    def __len__(self) -> int:
        return len(self.head) + self.size + len(self.tail)

    def __iter__(self) -> Iterator[bytes]:
        while block := self.read(BLOCK):
            yield block

    def read(self, n: int = -1) -> bytes:
        n = BLOCK if n is None or n < 0 else n
        if self._stage == 0:
            self._stage = 1
            return self.head
        if self._stage == 1:
            block = self._handle.read(n)
            if block:
                self._sent += len(block)
                if self.on_progress:
                    self.on_progress(self._sent)
                return block
            self._stage = 2
            return self.tail
        return b""

    def seek(self, offset: int) -> None:
        """Only rewinding is supported (a throttled request is sent again)."""
        self._handle.seek(0)
        self._stage, self._sent = 0, 0

    def close(self) -> None:
        self._handle.close()


# --- submitting --------------------------------------------------------------------------


def submit_file(client: ApiClient, *, slug: str, phase: str, path: Path, kind: str,
                on_progress: ProgressFn | None = None, sleep: Callable[[float], None] = time.sleep,
                threshold: int | None = None, chunk_size: int | None = None) -> dict[str, Any]:
    """Upload `path` as a submission and return the server's submission JSON."""
    attempt = Attempt.for_file(client, slug, phase, path)
    attempt.remember()
    try:
        if path.stat().st_size > (threshold or _env_int("HELDOUT_CHUNKED_THRESHOLD",
                                                        CHUNKED_THRESHOLD)):
            uploader = ChunkedUpload(client, attempt=attempt, path=path, on_progress=on_progress,
                                     sleep=sleep, chunk_size=chunk_size or _env_int(
                                         "HELDOUT_CHUNK_SIZE", CHUNK_SIZE))
            submission = uploader.run(slug=slug, phase=phase, kind=kind)
        else:
            submission = _direct(client, attempt=attempt, slug=slug, phase=phase, path=path,
                                 kind=kind, on_progress=on_progress, sleep=sleep)
    except ApiError as error:
        # A 4xx is a definite answer (nothing was created); after anything else the outcome
        # is unknown, so the key is kept for the next run to reuse.
        if 400 <= error.status < 500:
            attempt.forget()
        raise
    attempt.forget()
    return submission


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() and int(value) > 0 else default


def _retryable(error: ApiError) -> bool:
    return error.is_network or error.status in RETRY_STATUSES


def _backoff(failures: int) -> float:
    return float(min(2 ** (failures - 1), 10))


def _direct(client: ApiClient, *, attempt: Attempt, slug: str, phase: str, path: Path,
            kind: str, on_progress: ProgressFn | None,
            sleep: Callable[[float], None]) -> dict[str, Any]:
    """One multipart POST, re-sent with the same Idempotency-Key after a network failure."""
    failures = 0
    while True:
        body = MultipartFile(path, {"kind": kind}, on_progress)
        try:
            response = client.request(
                "POST", phase_path(slug, phase) + "submissions/", data=body,
                headers={"Content-Type": body.content_type,
                         "Idempotency-Key": attempt.idempotency_key},
                read_timeout=UPLOAD_READ_TIMEOUT)
            return response.json()  # type: ignore[no-any-return]
        except ApiError as error:
            failures += 1
            if not _retryable(error) or failures > MAX_RETRIES:
                raise
            sleep(_backoff(failures))
        finally:
            body.close()


class ChunkedUpload:
    """Start (or reuse) an upload session, PUT chunks at the server's offset, finish.

    After a dropped connection the client asks the server how many bytes it holds and goes
    on from there; it never trusts its own count of what was sent.
    """

    def __init__(self, client: ApiClient, *, attempt: Attempt, path: Path, chunk_size: int,
                 on_progress: ProgressFn | None, sleep: Callable[[float], None]) -> None:
        self.client, self.attempt, self.path = client, attempt, path
        self.size = path.stat().st_size
        self.chunk_size, self.on_progress, self.sleep = chunk_size, on_progress, sleep
        self.failures = 0

    def run(self, *, slug: str, phase: str, kind: str) -> dict[str, Any]:
        session = self._session(slug=slug, phase=phase, kind=kind)
        if session.get("submission"):
            return self.client.submission(str(session["submission"]))  # type: ignore[no-any-return]
        offset = int(session["received"])
        with self.path.open("rb") as handle:
            while offset < self.size:
                offset = self._send_chunk(handle, offset)
                if self.on_progress:
                    self.on_progress(offset)
        return self._finish()

    def _session(self, *, slug: str, phase: str, kind: str) -> dict[str, Any]:
        if self.attempt.upload_id:
            try:
                return self._retrying(lambda: self.client.get(self._url()))  # type: ignore[no-any-return]
            except ApiError as error:
                if error.status != 404:  # 404: the session expired; start afresh
                    raise
        session = self._retrying(lambda: self.client.post(
            phase_path(slug, phase) + "uploads/",
            {"kind": kind, "filename": self.path.name, "size": self.size}))
        self.attempt.upload_id = str(session["id"])
        self.attempt.remember()
        return session  # type: ignore[no-any-return]

    def _url(self, suffix: str = "") -> str:
        return f"uploads/{segment(str(self.attempt.upload_id))}/{suffix}"

    def _send_chunk(self, handle: Any, offset: int) -> int:
        handle.seek(offset)
        block = handle.read(self.chunk_size)
        try:
            response = self.client.request(
                "PUT", self._url(), params={"offset": offset}, data=block,
                headers={"Content-Type": "application/octet-stream"})
        except ApiError as error:
            return self._recover(error)
        self.failures = 0
        return int(response.json()["received"])

    def _recover(self, error: ApiError) -> int:
        """Where to go on from after a failed PUT: the server's own offset."""
        if error.status == 409 and "received" in error.payload:
            return int(error.payload["received"])  # we and the server disagreed; it wins
        if not _retryable(error):
            raise error
        self.failures += 1
        if self.failures > MAX_RETRIES:
            raise error
        self.sleep(_backoff(self.failures))
        return int(self._retrying(lambda: self.client.get(self._url()))["received"])

    def _finish(self) -> dict[str, Any]:
        response = self._retrying(lambda: self.client.request(
            "POST", self._url("finish/"), json={},
            headers={"Idempotency-Key": self.attempt.idempotency_key},
            read_timeout=UPLOAD_READ_TIMEOUT).json())
        return response  # type: ignore[no-any-return]

    def _retrying(self, call: Callable[[], Any]) -> Any:
        while True:
            try:
                result = call()
            except ApiError as error:
                self.failures += 1
                if not _retryable(error) or self.failures > MAX_RETRIES:
                    raise
                self.sleep(_backoff(self.failures))
                continue
            self.failures = 0
            return result
