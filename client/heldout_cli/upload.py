"""Submitting a file: kind detection, a streamed multipart POST for small files, and the
resumable chunked protocol for large ones.

Safety against double submission: every attempt carries an Idempotency-Key. The key (and,
for chunked uploads, the upload session) is remembered in the config folder until the
server has answered, so even re-running `heldout submit` after a crash or Ctrl-C reuses
it: the server then returns the submission it already made, or the upload resumes from
the server's offset rather than starting again.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import tenacity

from heldout_cli import config
from heldout_cli.api import UPLOAD_READ_TIMEOUT, ApiClient, ApiError, Sleep, phase_path, segment

CHUNKED_THRESHOLD = 32 * 1024 * 1024
CHUNK_SIZE = 8 * 1024 * 1024
MAX_RETRIES = 5  # failed attempts in a row at one step, before giving up
MAX_BACKOFF_S = 10.0
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


# --- retrying ----------------------------------------------------------------------------


def _retryable(error: BaseException) -> bool:
    """No answer, or a proxy's 502/503/504: the request may be sent again as it is."""
    return isinstance(error, ApiError) and (error.is_network or error.status in RETRY_STATUSES)


def retrying(sleep: Sleep) -> tenacity.Retrying:
    """Up to MAX_RETRIES more tries of one step, 1, 2, 4, 8, 10 s apart; then its error."""
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(_retryable),
        wait=tenacity.wait_exponential(multiplier=1, max=MAX_BACKOFF_S),
        stop=tenacity.stop_after_attempt(MAX_RETRIES + 1),
        sleep=sleep,
        reraise=True,
    )


# --- submitting --------------------------------------------------------------------------


def submit_file(client: ApiClient, *, slug: str, phase: str, path: Path, kind: str,
                on_progress: ProgressFn | None = None, sleep: Sleep = time.sleep,
                threshold: int | None = None, chunk_size: int | None = None) -> dict[str, Any]:
    """Upload `path` as a submission and return the server's submission JSON."""
    attempt = Attempt.for_file(client, slug, phase, path)
    attempt.remember()
    threshold = threshold or _env_int("HELDOUT_CHUNKED_THRESHOLD", CHUNKED_THRESHOLD)
    try:
        if path.stat().st_size > threshold:
            uploader = ChunkedUpload(
                client, attempt=attempt, path=path, on_progress=on_progress, sleep=sleep,
                chunk_size=chunk_size or _env_int("HELDOUT_CHUNK_SIZE", CHUNK_SIZE))
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


class _ReportingFile(io.FileIO):
    """A file that reports how far it has been read; httpx streams the multipart body from
    it block by block (and learns its size from the file, for the Content-Length)."""

    def __init__(self, path: Path, on_progress: ProgressFn | None) -> None:
        super().__init__(path, "rb")
        self.on_progress = on_progress

    def read(self, size: int | None = -1) -> bytes:
        block = super().read(size)
        if block and self.on_progress:
            self.on_progress(self.tell())
        return block or b""


def _direct(client: ApiClient, *, attempt: Attempt, slug: str, phase: str, path: Path,
            kind: str, on_progress: ProgressFn | None, sleep: Sleep) -> dict[str, Any]:
    """One multipart POST, sent again with the same Idempotency-Key after a network failure."""
    with _ReportingFile(path, on_progress) as handle:
        response = retrying(sleep)(
            client.request, "POST", phase_path(slug, phase) + "submissions/",
            data={"kind": kind},
            files={"file": (path.name, handle, "application/octet-stream")},
            headers={"Idempotency-Key": attempt.idempotency_key},
            read_timeout=UPLOAD_READ_TIMEOUT)
    return response.json()  # type: ignore[no-any-return]


class ChunkedUpload:
    """Start (or reuse) an upload session, PUT chunks at the server's offset, finish.

    After a failed PUT the client asks the server how many bytes it holds and goes on from
    there; it never trusts its own count of what was sent.
    """

    def __init__(self, client: ApiClient, *, attempt: Attempt, path: Path, chunk_size: int,
                 on_progress: ProgressFn | None, sleep: Sleep) -> None:
        self.client, self.attempt, self.path = client, attempt, path
        self.size = path.stat().st_size
        self.chunk_size, self.on_progress = chunk_size, on_progress
        self.retrying = retrying(sleep)
        self.offset: int | None = None  # None: unknown until the server says

    def run(self, *, slug: str, phase: str, kind: str) -> dict[str, Any]:
        session = self._session(slug=slug, phase=phase, kind=kind)
        if session.get("submission"):
            return self.client.submission(str(session["submission"]))  # type: ignore[no-any-return]
        offset = self.offset = int(session["received"])
        with self.path.open("rb") as handle:
            while offset < self.size:
                offset = self.retrying(self._step, handle)
                if self.on_progress:
                    self.on_progress(offset)
        return self._finish()

    def _session(self, *, slug: str, phase: str, kind: str) -> dict[str, Any]:
        if self.attempt.upload_id:
            try:
                known: dict[str, Any] = self.retrying(self.client.get, self._url())
                return known
            except ApiError as error:
                if error.status != 404:  # 404: the session expired; start afresh
                    raise
        session = self.retrying(
            self.client.post, phase_path(slug, phase) + "uploads/",
            {"kind": kind, "filename": self.path.name, "size": self.size})
        self.attempt.upload_id = str(session["id"])
        self.attempt.remember()
        return session  # type: ignore[no-any-return]

    def _url(self, suffix: str = "") -> str:
        return f"uploads/{segment(str(self.attempt.upload_id))}/{suffix}"

    def _step(self, handle: BinaryIO) -> int:
        """Send the chunk at the server's offset and return the new one; after a failure,
        ask the server for its offset first."""
        offset = self.offset
        if offset is None:
            offset = int(self.client.get(self._url())["received"])
        self.offset = None
        handle.seek(offset)
        try:
            response = self.client.request(
                "PUT", self._url(), params={"offset": offset},
                content=handle.read(self.chunk_size),
                headers={"Content-Type": "application/octet-stream"})
        except ApiError as error:
            if error.status == 409 and "received" in error.payload:
                self.offset = int(error.payload["received"])  # we and the server disagreed
                return self.offset
            raise
        self.offset = int(response.json()["received"])
        return self.offset

    def _finish(self) -> dict[str, Any]:
        response = self.retrying(
            self.client.request, "POST", self._url("finish/"), json={},
            headers={"Idempotency-Key": self.attempt.idempotency_key},
            read_timeout=UPLOAD_READ_TIMEOUT)
        return response.json()  # type: ignore[no-any-return]
