"""Data stations on the platform's side: registration, token checks, the datasets they
report. A station is known by its name and a token shown once; its datasets by fingerprints
(sha256 of the files, counts), never by their content."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.db import transaction
from django.utils import timezone

from challenges.exceptions import BundleError
from challenges.models import EvaluationSet, Station, StationDataset
from core.services import audit_record

FINGERPRINT_KEYS = {"sha256", "files", "n_cases", "n_positive", "n_lesions", "parts"}


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def station_add(*, name: str, actor: Any = None) -> tuple[Station, str]:
    """Register a station; returns it and its token (shown once, stored hashed)."""
    if Station.objects.filter(name=name).exists():
        raise BundleError([f"A station called {name!r} is registered already."])
    token = secrets.token_urlsafe(32)
    station = Station(name=name, token_hash=token_hash(token))
    station.full_clean()
    station.save()
    audit_record(verb="station.added", actor=actor, target=f"station:{station.name}")
    return station, token


def station_for_token(token: str) -> Station | None:
    if not token:
        return None
    return Station.objects.filter(token_hash=token_hash(token)).first()


def _clean_fingerprint(raw: Any) -> dict[str, Any]:
    """A reported fingerprint, checked: counts and hashes only (anything else is refused)."""
    if not isinstance(raw, dict) or set(raw) - FINGERPRINT_KEYS or "sha256" not in raw:
        raise ValueError(f"a fingerprint has the keys {sorted(FINGERPRINT_KEYS)}")
    parts = raw.get("parts") or {}
    if not isinstance(parts, dict) or not all(
            isinstance(k, str) and isinstance(v, int) for k, v in parts.items()):
        raise ValueError("parts maps a part name to its number of cases")
    for key in ("files", "n_cases", "n_positive"):
        if not isinstance(raw.get(key), int):
            raise ValueError(f"{key} must be a whole number")
    return {key: raw.get(key) for key in sorted(FINGERPRINT_KEYS)}


@transaction.atomic
def station_hello(*, station: Station, datasets: list[dict[str, Any]],
                  challenges: list[str] | None = None) -> list[str]:
    """Record the datasets a station reports and the challenges it serves; a fingerprint
    that differs from the last one reported is flagged (changed_at: no job runs on it until
    an organiser accepts it) and audited. Returns the names of changed datasets."""
    changed = []
    now = timezone.now()
    allowed = sorted({str(slug) for slug in (challenges or [])})
    if allowed != station.allowed_challenges:
        audit_record(verb="station.consent", target=f"station:{station.name}",
                     data={"challenges": allowed})
        Station.objects.filter(pk=station.pk).update(allowed_challenges=allowed)
        station.allowed_challenges = allowed
    for item in datasets:
        name, fingerprint = str(item["name"]), _clean_fingerprint(item.get("fingerprint"))
        known, _ = StationDataset.objects.select_for_update().get_or_create(
            station=station, name=name)
        if known.fingerprint and known.fingerprint != fingerprint:
            known.changed_at = now
            changed.append(name)
            audit_record(verb="station.dataset_changed", target=f"station:{station.name}",
                         data={"dataset": name, "before": known.fingerprint.get("sha256"),
                               "after": fingerprint["sha256"]})
        elif not known.fingerprint:
            audit_record(verb="station.dataset_reported", target=f"station:{station.name}",
                         data={"dataset": name, "sha256": fingerprint["sha256"],
                               "n_cases": fingerprint["n_cases"]})
        known.fingerprint, known.reported_at = fingerprint, now
        known.save()
    Station.objects.filter(pk=station.pk).update(last_contact_at=now)
    _refresh_counts(station)
    return changed


def _refresh_counts(station: Station) -> None:
    """Counts of the remote sets that name this station, from their sources' fingerprints."""
    # Filtered here, not with a JSON `contains` lookup: SQLite (the demo's default) has none.
    remote = EvaluationSet.objects.exclude(sources=[])
    for item in (s for s in remote if any(x["station"] == station.name for x in s.sources)):
        reported = [d.fingerprint for d in source_datasets(item) if d is not None]
        if len(reported) != len(item.sources) or not all(reported):
            continue
        parts = {name for f in reported for name in (f.get("parts") or {})}
        item.n_cases = sum(f["n_cases"] for f in reported)
        item.n_positive = sum(f["n_positive"] for f in reported)
        item.has_split = "public" in parts
        item.save(update_fields=["n_cases", "n_positive", "has_split"])


def source_datasets(evaluation_set: EvaluationSet) -> list[StationDataset | None]:
    """The station datasets a remote set names, in order (None: not reported yet)."""
    found = {(d.station.name, d.name): d for d in StationDataset.objects.filter(
        station__name__in=[s["station"] for s in evaluation_set.sources]).select_related(
        "station")}
    return [found.get((s["station"], s["dataset"])) for s in evaluation_set.sources]


@transaction.atomic
def dataset_accept(*, dataset: StationDataset, actor: Any) -> None:
    """An organiser accepts a station dataset's changed fingerprint: jobs run on it again."""
    audit_record(verb="station.dataset_accepted", actor=actor,
                 target=f"station:{dataset.station.name}",
                 data={"dataset": dataset.name, "sha256": dataset.fingerprint.get("sha256")})
    StationDataset.objects.filter(pk=dataset.pk).update(changed_at=None)


def source_problems(evaluation_set: EvaluationSet, challenge_slug: str) -> list[str]:
    """What stops a remote set from being scored: sources that have not reported, stations
    that do not serve the challenge, and sites whose parts disagree (all with a public /
    private split, or all without)."""
    problems = [f"station dataset {name} has not reported its fingerprint yet (start the "
                "station with its data)." for name in unreported_sources(evaluation_set)]
    datasets = [d for d in source_datasets(evaluation_set) if d is not None and d.fingerprint]
    for station in sorted({d.station.name for d in datasets if challenge_slug not in
                           d.station.allowed_challenges}):
        problems.append(f"station {station} does not serve this challenge (it must be started "
                        f"with --allow {challenge_slug}).")
    splits = {"public" in (d.fingerprint.get("parts") or {}) for d in datasets}
    if len(splits) > 1:
        problems.append("some station datasets have a public/private split and others do "
                        "not; give all of them a split column, or none.")
    return problems


def unreported_sources(evaluation_set: EvaluationSet) -> list[str]:
    """`station/dataset` of every source that has not reported a fingerprint."""
    return [f"{s['station']}/{s['dataset']}" for s, d in zip(
        evaluation_set.sources, source_datasets(evaluation_set), strict=True)
        if d is None or not d.fingerprint]
