"""The container backend contract.

A backend runs one participant model against one input folder and reports what happened.
Backends never import Django models: the pipeline builds a `RunSpec` from the database and
turns the `RunResult` into statuses. Engine failures become `BackendError`, never an engine
library's own exception, so the pipeline can classify them as `internal_error`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Limits:
    cpus: float = 1.0
    memory_mb: int = 2048
    seconds: int = 600
    pids: int = 256
    output_mb: int = 256
    tmp_mb: int = 256
    log_bytes: int = 64 * 1024


@dataclass(frozen=True)
class RunSpec:
    """One run: `image` is a pinned reference (`sha256:...` id or a local tag).

    `command` overrides the image's command (bundles run `python predict.py` from
    `/submission`); `submission_dir`, when set, is mounted read-only at `/submission`.
    `name` is the container name, unique per submission and attempt, so a restarted
    worker can find and remove its own container.
    """

    name: str
    image: str
    input_dir: Path
    output_dir: Path
    limits: Limits = field(default_factory=Limits)
    env: Mapping[str, str] = field(default_factory=dict)
    command: tuple[str, ...] | None = None
    submission_dir: Path | None = None


@dataclass(frozen=True)
class RunResult:
    exit_code: int | None
    timed_out: bool
    oom_killed: bool
    log_tail: str
    duration_s: float
    output_too_large: bool = False


class BackendError(Exception):
    """The engine failed (not the model). Shown to participants only as internal_error."""


class InvalidImage(Exception):
    """An uploaded image archive cannot be loaded; the message is safe to show."""


class Backend(ABC):
    @abstractmethod
    def run(self, spec: RunSpec) -> RunResult:
        """Run to completion (or the wall-clock limit), copy /output into
        `spec.output_dir`, remove the container, and report."""

    @abstractmethod
    def load_image(self, archive: Path) -> str:
        """Load a `docker save` archive (optionally gzipped) holding exactly one image;
        return its immutable id (`sha256:...`). Raises InvalidImage."""

    @abstractmethod
    def remove_orphans(self, *, prefix: str, keep: frozenset[str] = frozenset()) -> list[str]:
        """Remove containers whose name starts with `prefix` and is not in `keep`."""

    def wait_for_cleanup(self) -> None:  # noqa: B027 - optional, nothing to wait for here
        """Wait for resources of finished runs that the backend removes in the background."""
