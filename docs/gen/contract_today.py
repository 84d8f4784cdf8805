"""The container contract as today's modules state it, in the shape docs/gen/contract.py
reads: a bridge until the evaluation kernel describes it (heldout_kernel.contract), then
CONTRACT_MODULE points there and this module goes.

Read from the code where the code states it (error classes and their sentences, output
headers, the environment the Docker backend builds, default limits, masked paths); the
mounts and stages are written here, as scoring/backends/docker.py and scoring/pipeline.py
implement them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from docs.gen.django_setup import setup

setup()  # the error classes' titles are Submission.ErrorClass labels

from scoring import judge  # noqa: E402
from scoring.backends import docker as docker_backend  # noqa: E402
from scoring.backends.base import Limits  # noqa: E402
from submissions.models import Submission  # noqa: E402
from submissions.validation import detections  # noqa: E402

VERSION = "1"


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
    Mount("/input", "read-only", "The cases: `features.csv` with an `id` column (tabular "
          "tasks), or `manifest.csv` (`id` and metadata) and `images/<id>.png` (imaging). "
          "Labels are never mounted."),
    Mount("/output", "writable", "Where the model writes its output files; a tmpfs of a "
          "quarter of the memory limit, at most 256 MB and 4,096 files."),
    Mount("/tmp", "writable", "Scratch space, the same size; counts against the memory "
          "limit."),
    Mount("/submission", "read-only", "A bundle's unpacked files, the working directory of "
          "`python3 predict.py` (bundles only; an image runs its own entrypoint)."),
)

_PATHS = docker_backend._environment({})
ENVIRONMENT = (
    *(Variable(name, value, f"Where the {name.removeprefix('HELDOUT_').lower()} folder is.")
      for name, value in _PATHS.items()),
    Variable("HELDOUT_TASK", "the phase's task", "`binary` or `detection`."),
    Variable("OMP_NUM_THREADS", "the phase's CPUs", "Also `OPENBLAS_NUM_THREADS` and "
             "`MKL_NUM_THREADS`: numerical libraries start one thread per CPU the run has, "
             "not per host core."),
)

STAGES = (
    Stage("upload", "the file alone", "At once: whether the file is usable (`invalid_upload` "
          "names the problem)."),
    Stage("sanity", "the phase's small public sanity set", "At once: the full log, the exit "
          "code and every problem of the output, by row. Skipped when the same file already "
          "passed it."),
    Stage("hidden", "the hidden evaluation set (centrally or at data stations)", "At the end "
          "of the release period it ended in (a minute by default): the scores under the "
          "phase's release policy, or the error class and its fixed sentence."),
)

OUTPUTS = (
    Output("/output/predictions.csv", "id,score[,label]", "binary", "Every input id exactly "
           "once; score the probability of the positive class in [0, 1]; label 0/1 "
           "(default: score >= 0.5)."),
    Output("/output/detections.csv", ",".join(detections.HEADER), "detection",
           f"Any number of rows per film, at most {detections.MAX_PER_FILM}; x and y in "
           "pixels of the image, origin top-left (x right, y down); score in [0, 1]. "
           "Ids from the manifest."),
    Output("/output/predictions.csv", "id,score[,label]", "detection", "Optional film-level "
           "scores, every id once; without it a film's score is its best detection's "
           "(0 with none)."),
)


def _error_class(code: str, title: str) -> ErrorClass:
    if code == judge.Error.INTERNAL_ERROR:
        return ErrorClass(code, title, judge.INTERNAL_MESSAGE, "never")
    if code == judge.Error.INVALID_UPLOAD:
        return ErrorClass(code, title, "", "unless the phase sets `count_failed: false`")
    sentence = judge.HIDDEN_LANE_MESSAGES[code]
    detection = judge.HIDDEN_DETECTION_MESSAGES[code]
    if detection != sentence:
        sentence = f"{sentence} Detection phases: {detection}"
    return ErrorClass(code, title, sentence, "on hidden data always; on the sanity run "
                      "unless the phase sets `count_failed: false`")


ERROR_CLASSES = tuple(_error_class(code, str(title))
                      for code, title in Submission.ErrorClass.choices)

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
    f"Runtime: gVisor (`{docker_backend.GVISOR}`, a kernel of its own per run) where the "
    f"engine has it, else `{docker_backend.RUNC}` with {len(docker_backend.MASKED_PATHS)} "
    "host-wide /proc and /sys paths masked (`HELDOUT_SANDBOX_RUNTIME`).",
    "Memory equals memory plus swap; a pids limit; the container, its volumes and work "
    "folder are removed afterwards.",
)
