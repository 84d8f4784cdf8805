"""Heldout data station: runs submitted models next to a hospital's own data.

A station is a small program beside the data and a Docker engine. It needs no database and
no inbound connection: it polls the platform over HTTP(S), runs each job's model in the same
hardened sandbox as the central worker (`heldout_kernel.sandbox.docker`), judges and scores the
output with the same trusted code (`heldout_kernel.judge`, `heldout_kernel.aggregates`), and
posts back.

What leaves a station, per job:
- per part ("public"/"private", or "all"): case and positive counts, metric values, the
  metrics on paired bootstrap resamples and the sites' combination weights, the primary
  metric per subgroup cell (small cells suppressed), a coarsened ROC curve. The resamples
  are drawn with a seed derived from the station's own secret (`runner.site_seed`), not the
  phase's public seed: with that one the platform could rebuild the resamples and solve the
  per-resample weights for every hidden label;
- or, when anything failed, its error class only (`internal_error` for station-side
  failures and for jobs of challenges the station does not serve, `--allow`): no message,
  exit code, duration or log, which the model controls.
Before any job: each dataset's name and fingerprint (file digests and counts) and the
challenges the station serves.

What stays: the inputs, labels and lesions, every per-case value (ids, labels, the model's
scores and detections), the station's secret, failure messages, exit codes, durations and
the full logs. A successful run's /output files are kept under the state folder
(`results/<submission uid>/`), never inside the data folder.

Django is not needed (nor imported): `heldout_station.cli` is the entry point (`heldout-station`).
Modules: `datasets` (data folder, fingerprints), `client` (the platform's station API),
`runner` (one job; the claim loop), `cli` (arguments, signals, logging).
"""
