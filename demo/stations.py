"""`python -m demo.run --stations`: the readmission challenge scored at two data stations.

The one US data set is split, for demonstration only, into two "hospitals" by a real column
of the hidden encounters, `admission_source_id` (UCI Diabetes 130-US hospitals, see
IDs_mapping.csv): code 7 (emergency room) goes to the station `emergency`, every other code
(physician, clinic and HMO referrals, transfers from other facilities, and not available /
unknown) to the station `referral`. Each station gets its own data folder under
`var/demo-stations/<station>/data/` (var/ is git-ignored), the platform gets a second
challenge bundle whose hidden set names the two stations and has no hidden files at all, and
two real `heldout-station` processes score the submissions next to their data.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from django.db.models import ProtectedError

from challenges.bundles import import_challenge
from challenges.models import Station
from challenges.stations import station_add, station_for_token

SLUG = "readmission-30d-stations"
SOURCE_SLUG = "readmission-30d"
TITLE = "Readmission at two hospitals (data stations)"
DATASET = "readmission-30d"
SPLIT_COLUMN = "admission_source_id"
EMERGENCY_ROOM = "7"  # IDs_mapping.csv: admission_source_id 7 = "Emergency Room"
STATIONS = ("emergency", "referral")
SYNTHETIC_PREFIX = "[SYNTHETIC] "
# Boot-ladder-boot (the readmission challenge's policy) needs per-case scores, which stay at
# the stations; the ladder works on the aggregates they send and still hides single-label
# probes (README, Data protection).
RELEASE = {"policy": "ladder", "eta": 0.01}

STATION_PARAGRAPH = """
## Two hospitals, two data stations

This is the two-station variant of *Predict 30-day readmission*. For demonstration, the
held-out encounters of the one US data set are split into two "hospitals" by their admission
source (`admission_source_id`): encounters admitted through the emergency room (code 7) are
held by the station **emergency**, all others (referrals, transfers, unknown) by the station
**referral**. Each station runs your model next to its own cases and sends back aggregates
only (counts, metrics, bootstrap values, a coarsened ROC curve): the hidden cases, their
labels and your model's per-case scores never reach the platform. The leaderboard combines
the two sites; each entry also shows its per-hospital results.

Because no per-case score reaches the platform, scores are released with the *ladder*
policy (a new value only when a submission beats the team's shown best by more than 0.01)
instead of the bootstrap ladder of the single-site challenge.
"""


@dataclass(frozen=True)
class Site:
    """One demo hospital: its station's folder (`data/`, `state/`, `token`) and case counts."""

    station: str
    root: Path
    n_cases: int
    n_positive: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def dataset(self) -> Path:
        return self.data / DATASET

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def token_file(self) -> Path:
        return self.root / "token"


def site_of(admission_source_id: str) -> str:
    return "emergency" if admission_source_id.strip() == EMERGENCY_ROOM else "referral"


def _read(path: Path) -> pd.DataFrame:
    # As text and without NA guessing, so every value is written back byte for byte.
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _write(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, lineterminator="\n", encoding="utf-8")
    path.chmod(0o644)  # the sandbox user (uid 65534) reads the inputs


def split_hidden_by_site(bundle: Path, root: Path) -> dict[str, Site]:
    """Write `root/<station>/data/<DATASET>/` (inputs/features.csv, labels.csv with the split
    and subgroup columns) for each station from `bundle`'s hidden cases."""
    features = _read(bundle / "hidden" / "inputs" / "features.csv")
    labels = _read(bundle / "hidden" / "labels.csv").set_index("id", drop=False)
    where = features[SPLIT_COLUMN].map(site_of)
    sites = {}
    for station in STATIONS:
        mine = features[where == station].reset_index(drop=True)
        site_labels = labels.loc[mine["id"]].reset_index(drop=True)
        folder = root / station / "data" / DATASET
        shutil.rmtree(folder, ignore_errors=True)  # nothing stale from an earlier split
        _write(folder / "inputs" / "features.csv", mine)
        _write(folder / "labels.csv", site_labels)
        for path in (folder, folder / "inputs"):
            path.chmod(0o755)
        sites[station] = Site(station=station, root=root / station, n_cases=len(mine),
                              n_positive=int((site_labels["label"] == "1").sum()))
    return sites


def build_station_bundle(source: Path, out: Path) -> Path:
    """The challenge bundle of the two-station variant, beside `source` (the readmission
    bundle): its public files, terms and sanity set, its README with a paragraph on the
    stations, and one phase whose hidden set is at the stations."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    document = yaml.safe_load((source / "challenge.yaml").read_text(encoding="utf-8"))
    for relative in [document["terms"], *document["public_files"], "sanity"]:
        _copy(source / relative, out / relative)
    synthetic = document["title"].startswith(SYNTHETIC_PREFIX)
    document["slug"] = SLUG
    document["title"] = (SYNTHETIC_PREFIX if synthetic else "") + TITLE
    document["summary"] += " Scored at two hospitals' data stations."
    document["phases"] = [_station_phase(document["phases"][0])]
    readme = (source / document["description"]).read_text(encoding="utf-8")
    heading, _, rest = readme.partition("\n")
    title = heading.replace("Predict 30-day readmission", TITLE)
    (out / document["description"]).write_text(
        f"{title}\n{rest.rstrip()}\n{STATION_PARAGRAPH}", encoding="utf-8")
    (out / "challenge.yaml").write_text(
        yaml.safe_dump(document, sort_keys=False, width=100), encoding="utf-8")
    return out


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copyfile(source, target)


def _station_phase(phase: dict[str, Any]) -> dict[str, Any]:
    """The readmission phase with its hidden set at the two stations; the sanity set stays
    central (public data)."""
    return {**phase,
            "evaluation": {"stations": [{"station": s, "dataset": DATASET} for s in STATIONS]},
            "score_release": RELEASE}


def ensure_station(site: Site) -> None:
    """Register the site's station unless its token file holds a token the database knows
    for it. A local demo only: the token sits in a plain file (mode 0600) next to the data,
    where a real hospital would keep it in its own secret store."""
    token = site.token_file.read_text().strip() if site.token_file.is_file() else ""
    known = station_for_token(token)
    if known is not None and known.name == site.station:
        return
    try:
        Station.objects.filter(name=site.station).delete()
    except ProtectedError:  # it has jobs: another database's token may be in the file
        raise SystemExit(
            f"Station {site.station!r} has jobs in this database, but {site.token_file} does "
            "not hold its token (was var/ used with another database?). Restore the token "
            "file or use a fresh database.") from None
    _, token = station_add(name=site.station)
    site.root.mkdir(parents=True, exist_ok=True)
    site.token_file.unlink(missing_ok=True)
    descriptor = os.open(site.token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(token + "\n")


@dataclass(frozen=True)
class StationDemo:
    sites: dict[str, Site]
    bundle: Path


def prepare(bundle_root: Path, root: Path) -> StationDemo:
    """Split the built readmission bundle's hidden cases into the two stations' folders,
    register the stations and import the two-station challenge."""
    source = bundle_root / SOURCE_SLUG
    sites = split_hidden_by_site(source, root)
    for site in sites.values():
        ensure_station(site)
    bundle = build_station_bundle(source, bundle_root / SLUG)
    import_challenge(bundle)
    held = " and ".join(f"{s.station} ({s.n_cases:,})" for s in sites.values())
    print(f"  {SLUG}: the same hidden cases, held by the data stations {held}")
    return StationDemo(sites=sites, bundle=bundle)


def wait_for_server(url: str, server: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Until `url`/healthz answers (a 503 is an answer: the server is up, a check failed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the web server exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=5):
                return
        except urllib.error.HTTPError as error:
            print(f"  /healthz answered {error.code}: a check failed, see the server log")
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the web server did not answer at {url}/healthz in {timeout:.0f} s")


def start_stations(demo: StationDemo, url: str) -> list[subprocess.Popen[bytes]]:
    """One `heldout-station` per site, with only what a hospital machine would have: no
    database or platform settings, the token in the environment (not on the command line,
    where other local users could read it)."""
    program = str(Path(sys.executable).with_name("heldout-station"))
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("DATABASE", "DJANGO", "REDIS", "HELDOUT", "CELERY"))}
    processes = []
    for site in demo.sites.values():
        site.state.mkdir(parents=True, exist_ok=True)
        env = {**base, "HELDOUT_STATION_TOKEN": site.token_file.read_text().strip()}
        processes.append(subprocess.Popen(
            [program, "--url", url, "--data", str(site.data), "--state", str(site.state),
             "--allow", SLUG],  # the hospital's consent: this challenge only
            env=env))
    return processes


def banner(demo: StationDemo) -> str:
    lines = [f"Data stations (challenge {SLUG}; the one US data set split by admission "
             "source, for demonstration):"]
    for site in demo.sites.values():
        lines.append(f"  {site.station:<10} {site.n_cases:>6,} hidden cases "
                     f"({site.n_positive:,} positive) in {site.dataset}")
    lines.append("  Both run heldout-station; the platform never receives their cases, labels "
                 "or per-case scores,")
    lines.append("  only aggregates. Their logs and per-case outputs stay in "
                 f"{next(iter(demo.sites.values())).root.parent}/<station>/state.")
    return "\n".join(lines)
