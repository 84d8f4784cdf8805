"""The container contract: what a participant's model sees and must write, and what its team
reads of how a run went. Stated once, here: the sandbox, the judge, the platform's pages and
the documentation (docs/gen/contract.py renders this module) all read it.

Version 1: one stage (`predict`) on `/input`, writing `/output`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from heldout_kernel.sandbox.base import Limits
from heldout_kernel.validation.detections import HEADER as DETECTIONS_HEADER
from heldout_kernel.validation.detections import MAX_PER_FILM

VERSION = "1"
INPUT, OUTPUT, SUBMISSION = "/input", "/output", "/submission"


class Error:
    """The error classes (the platform's Submission.ErrorClass has the same values)."""

    TIMEOUT = "timeout"
    OUT_OF_MEMORY = "out_of_memory"
    NONZERO_EXIT = "nonzero_exit"
    MISSING_OUTPUT = "missing_output"
    INVALID_OUTPUT = "invalid_output"
    INTERNAL_ERROR = "internal_error"
    INVALID_UPLOAD = "invalid_upload"


# What a team reads about a failed run on hidden data: one fixed sentence per error class,
# never the exit code, the time, counts, ids or anything the model wrote (each would be a
# channel out of the sandbox). Organisers see the details on the Run.
HIDDEN_LANE_MESSAGES = {
    Error.TIMEOUT: "The model did not finish within the phase's time limit on the hidden data.",
    Error.OUT_OF_MEMORY: "The model used more memory than the phase allows on the hidden data.",
    Error.NONZERO_EXIT: "The model stopped with an error on the hidden data.",
    Error.MISSING_OUTPUT: "The model wrote no /output/predictions.csv on the hidden data.",
    Error.INVALID_OUTPUT: "The predictions on the hidden data do not follow the contract "
    "(every input id exactly once, header id,score[,label], scores in [0, 1], /output within "
    "its size limit). The sanity run on public data shows details; check your model there.",
}
# Detection phases: the same sentences, naming the detections file.
HIDDEN_DETECTION_MESSAGES = {
    **HIDDEN_LANE_MESSAGES,
    Error.MISSING_OUTPUT: "The model wrote no /output/detections.csv on the hidden data.",
    Error.INVALID_OUTPUT: "The detections on the hidden data do not follow the contract "
    "(header id,x,y,score, ids from the manifest, x and y inside the image, scores in [0, 1], "
    f"at most {MAX_PER_FILM} per film, an optional predictions.csv with every id "
    "once, /output within its size limit). The sanity run on public data shows details; "
    "check your model there.",
}
INTERNAL_MESSAGE = ("Something went wrong on our side; the organisers have been told. "
                    "This attempt does not count against your quota.")


@dataclass(frozen=True)
class Mount:
    path: str
    access: str
    holds: str


@dataclass(frozen=True)
class Variable:
    name: str
    value: str
    meaning: str


@dataclass(frozen=True)
class Stage:
    name: str
    data: str
    told: str


@dataclass(frozen=True)
class Output:
    path: str
    header: str
    task: str
    rules: str


@dataclass(frozen=True)
class ErrorClass:
    code: str
    title: str
    sentence: str
    quota: str


@dataclass(frozen=True)
class Limit:
    name: str
    default: str
    meaning: str


MOUNTS = (
    Mount(INPUT, "read-only", "The cases: `features.csv` with an `id` column (tabular tasks), "
          "or `manifest.csv` (`id` and metadata) and `images/<id>.png` (imaging). Labels are "
          "never mounted."),
    Mount(OUTPUT, "writable", "Where the model writes its output files; a tmpfs of a quarter "
          "of the memory limit, at most 256 MB and 4,096 files."),
    Mount("/tmp", "writable", "Scratch space, the same size; counts against the memory limit."),
    Mount(SUBMISSION, "read-only", "A bundle's unpacked files, the working directory of "
          "`python3 predict.py` (bundles only; an image runs its own entrypoint)."),
)

ENVIRONMENT = (
    Variable("HELDOUT_INPUT", INPUT, "Where the input folder is."),
    Variable("HELDOUT_OUTPUT", OUTPUT, "Where the output folder is."),
    Variable("HELDOUT_TASK", "the phase's task", "`binary` or `detection`."),
    Variable("OMP_NUM_THREADS", "the phase's CPUs", "Also `OPENBLAS_NUM_THREADS` and "
             "`MKL_NUM_THREADS`: numerical libraries start one thread per CPU the run has, not "
             "per host core."),
)


def environment(*, task: str, cpus: float) -> dict[str, str]:
    """The environment a run gets (nothing else of the host's reaches it). BLAS libraries
    start a thread per host core: capped at the CPU quota, they neither thrash nor run into
    the pids limit."""
    threads = str(max(1, math.ceil(cpus)))
    return {"HELDOUT_INPUT": INPUT, "HELDOUT_OUTPUT": OUTPUT, "HELDOUT_TASK": task,
            **{name: threads for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                          "MKL_NUM_THREADS")}}


def limits(*, cpus: float, memory_mb: int, seconds: int) -> Limits:
    """A run's limits from a phase's: /output and /tmp are tmpfs, whose pages are charged to
    the model's memory cgroup, so they stay well below the memory limit and a full disk shows
    as ENOSPC, not as the OOM killer."""
    scratch_mb = max(16, min(256, memory_mb // 4))
    return Limits(cpus=cpus, memory_mb=memory_mb, seconds=seconds, output_mb=scratch_mb,
                  tmp_mb=scratch_mb)


STAGES = (
    Stage("upload", "the file alone", "At once: whether the file is usable (`invalid_upload` "
          "names the problem)."),
    Stage("sanity", "the phase's small public sanity set", "At once: the full log, the exit code "
          "and every problem of the output, by row. Skipped when the same file already passed "
          "it."),
    Stage("hidden", "the hidden evaluation set (centrally or at data stations)", "At the end of "
          "the release period it ended in (a minute by default): the scores under the phase's "
          "release policy, or the error class and its fixed sentence."),
)

OUTPUTS = (
    Output(f"{OUTPUT}/predictions.csv", "id,score[,label]", "binary", "Every input id exactly "
           "once; score the probability of the positive class in [0, 1]; label 0/1 (default: "
           "score >= 0.5)."),
    Output(f"{OUTPUT}/detections.csv", ",".join(DETECTIONS_HEADER), "detection",
           f"Any number of rows per film, at most {MAX_PER_FILM}; x and y in pixels of the "
           "image, origin top-left (x right, y down); score in [0, 1]. Ids from the manifest."),
    Output(f"{OUTPUT}/predictions.csv", "id,score[,label]", "detection", "Optional film-level "
           "scores, every id once; without it a film's score is its best detection's (0 with "
           "none)."),
)

TITLES = {
    Error.INVALID_UPLOAD: "The upload cannot be used",
    Error.TIMEOUT: "The model ran out of time",
    Error.OUT_OF_MEMORY: "The model ran out of memory",
    Error.NONZERO_EXIT: "The model exited with an error",
    Error.MISSING_OUTPUT: "The model wrote no predictions",
    Error.INVALID_OUTPUT: "The predictions do not follow the contract",
    Error.INTERNAL_ERROR: "Internal error (not your fault)",
}


def _error_class(code: str) -> ErrorClass:
    title = TITLES[code]
    if code == Error.INTERNAL_ERROR:
        return ErrorClass(code, title, INTERNAL_MESSAGE, "never")
    if code == Error.INVALID_UPLOAD:
        return ErrorClass(code, title, "", "unless the phase sets `count_failed: false`")
    sentence, detection = HIDDEN_LANE_MESSAGES[code], HIDDEN_DETECTION_MESSAGES[code]
    if detection != sentence:
        sentence = f"{sentence} Detection phases: {detection}"
    return ErrorClass(code, title, sentence, "on hidden data always; on the sanity run unless "
                      "the phase sets `count_failed: false`")


ERROR_CLASSES = tuple(_error_class(code) for code in TITLES)

_LIMIT_MEANINGS = {
    "cpus": "CPUs (a CPU quota)", "memory_mb": "memory in MB, swap included",
    "seconds": "wall-clock seconds, then the model is killed", "pids": "processes",
    "output_mb": "the size of /output in MB (a quarter of the memory, at most 256)",
    "tmp_mb": "the size of /tmp in MB (likewise)",
    "log_bytes": "bytes of log kept (the last ones)",
}
LIMITS = tuple(Limit(item.name, str(item.default), _LIMIT_MEANINGS[item.name])
               for item in fields(Limits))

SANDBOX = (
    "No network (`--network none`), a read-only root file system, all capabilities dropped, "
    "`no-new-privileges`, user 65534 (nobody), `--init`, no core dumps, private IPC.",
    "Runtime: gVisor (`runsc`, a kernel of its own per run) where the engine has it, else "
    "`runc` with the host-wide /proc and /sys paths masked (`HELDOUT_SANDBOX_RUNTIME`).",
    "Memory equals memory plus swap; a pids limit; the container, its volumes and work folder "
    "are removed afterwards.",
)
