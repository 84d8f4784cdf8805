"""Heldout data station: runs submitted models next to a hospital's own data.

A station is a small program beside the data and a Docker engine. It needs no database and
no inbound connection: it polls the platform over HTTP(S), runs each job's model in the same
hardened sandbox as the central worker (`scoring.backends.docker`), judges and scores the
output with the same trusted code (`scoring.judge`, `scoring.aggregates`), and posts back.

What leaves a station, per job:
- per part ("public"/"private", or "all"): case and positive counts, metric values, the
  metrics on the phase's paired bootstrap resamples and the sites' combination weights,
  the primary metric per subgroup cell (small cells suppressed), a coarsened ROC curve;
- or, when the model failed, its error class and a message (exit code, time limit; quoted
  values of an invalid output are withheld), and for station-side failures
  `internal_error`;
- the run's exit code and duration. The model's log tail only with `--send-logs` (hidden
  ids redacted): a model can print anything it read.
Before any job: each dataset's name and fingerprint (file digests and counts).

What stays: the inputs, labels and lesions, every per-case value (ids, labels, the model's
scores and detections) and the full logs. A successful run's /output files are kept under
the state folder (`results/<submission uid>/`), never inside the data folder.

Django is not needed (nor imported): `station.cli` is the entry point (`heldout-station`).
Modules: `datasets` (data folder, fingerprints), `client` (the platform's station API),
`runner` (one job; the claim loop), `cli` (arguments, signals, logging).
"""
