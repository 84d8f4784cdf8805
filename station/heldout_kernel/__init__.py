"""Heldout's evaluation kernel: what runs next to hidden data, at a data station as in the
platform's central worker (its built-in station). No Django, no database.

- `contract`: the container contract (mounts, environment, stages, output files, error
  classes and what a team reads of them).
- `sandbox`: the container backends (Docker: gVisor or masked runc) and the runtime image
  (`runtime_image`, its recipe in `runtime/`).
- `validation`, `judge`: trusted checks of uploads and of what a model wrote.
- `cases`, `scores`, `aggregates`, `stats`: per-case scores and the aggregates that may leave a
  site (metrics, resample vectors, small-cell-suppressed subgroups, coarsened curves).
- `protocol`: the station protocol's version.
"""

__version__ = "0.2.0"
