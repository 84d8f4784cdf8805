"""Services of the organiser's lifecycle of a challenge: import a bundle zip, replace the
files of an evaluation set, store public files, check readiness and publish.

Kept apart from challenges.services because they build on challenges.bundles, which itself
uses challenges.services (terms versions). Every write here is an audit event.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import yaml
from django.db import transaction
from django.utils import timezone

from challenges import selectors
from challenges.bundle_yaml import read_challenge_yaml
from challenges.bundles import (
    check_data_files,
    import_challenge,
    stored_data_fields,
)
from challenges.datacard import compute_data_card, provenance_entries
from challenges.exceptions import BundleError, ChallengeError, NotReady
from challenges.models import Challenge, EvaluationSet, Phase, PublicFile, Team
from challenges.stations import source_problems
from core import dispatch
from core.services import audit_record
from core.storage import private_path, private_root, sha256_file

MAX_ZIP_MEMBERS = 100_000
MAX_UNPACKED_BYTES = 20 * 1024**3


# --- zips ------------------------------------------------------------------------------


def unpack_zip(archive: Path, destination: Path, *, what: str = "The zip") -> None:
    """Extract a zip safely (no paths outside `destination`, no links, bounded size);
    raise BundleError naming the problem."""
    try:
        with zipfile.ZipFile(archive) as source:
            members = source.infolist()
            if len(members) > MAX_ZIP_MEMBERS:
                raise BundleError([f"{what} has more than {MAX_ZIP_MEMBERS} files."])
            if sum(m.file_size for m in members) > MAX_UNPACKED_BYTES:
                raise BundleError([f"{what} expands to more than 20 GB."])
            for member in members:
                _extract(source, member, destination, what)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise BundleError([f"{what} is not a readable zip file ({error}).".replace("..", ".")]) \
            from None


def _extract(source: zipfile.ZipFile, member: zipfile.ZipInfo, destination: Path,
             what: str) -> None:
    name = member.filename
    target = (destination / name).resolve()
    if destination.resolve() not in target.parents and target != destination.resolve():
        raise BundleError([f"{what}: {name!r} points outside the archive."])
    if (member.external_attr >> 16) & 0o170000 == 0o120000:
        raise BundleError([f"{what}: {name!r} is a symbolic link; links are not accepted."])
    if name.startswith("__MACOSX/") or Path(name).name == ".DS_Store":
        return
    if member.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with source.open(member) as reader, target.open("wb") as writer:
        shutil.copyfileobj(reader, writer)


def bundle_root(folder: Path) -> Path:
    """The folder holding challenge.yaml: the archive's root or its one top folder."""
    if (folder / "challenge.yaml").is_file():
        return folder
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir() and (entries[0] / "challenge.yaml").is_file():
        return entries[0]
    raise BundleError(["The zip has no challenge.yaml at its root or inside one top folder."])


def _bundle_slug(root: Path) -> str | None:
    try:
        raw = read_challenge_yaml(root / "challenge.yaml")
    except (yaml.YAMLError, UnicodeDecodeError, ValueError):
        return None  # load_bundle reports it with the other problems
    return str(raw.get("slug")) if isinstance(raw, dict) and raw.get("slug") else None


def challenge_import_zip(*, archive: Path, actor: Any) -> tuple[Challenge, bool]:
    """Import a zipped bundle (the admin's import): a new challenge is a draft; a bundle for
    an existing challenge updates it, which only its organisers may do. Nothing is written
    for a bad bundle (BundleError lists every problem)."""
    with tempfile.TemporaryDirectory(prefix="heldout-bundle-") as scratch:
        folder = Path(scratch)
        unpack_zip(archive, folder, what="The bundle zip")
        root = bundle_root(folder)
        slug = _bundle_slug(root)
        existing = Challenge.objects.filter(slug=slug).first() if slug else None
        if existing is not None and not selectors.is_organiser(challenge=existing, user=actor):
            raise BundleError([f"A challenge with the slug {slug!r} exists and you do not "
                               "organise it; choose another slug."])
        return import_challenge(root, actor=actor, draft=True)


# --- evaluation sets -------------------------------------------------------------------


def _stage_inputs(evaluation_set: EvaluationSet, inputs_zip: Path | None, scratch: Path) -> Path:
    if inputs_zip is None:
        return private_path(evaluation_set.inputs_dir)
    folder = scratch / "inputs"
    folder.mkdir()
    unpack_zip(inputs_zip, folder, what="The inputs zip")
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    # a zip of the folder itself (inputs/features.csv) as well as of its contents
    if len(entries) == 1 and entries[0].is_dir() and not any(
            (folder / name).is_file() for name in ("features.csv", "manifest.csv")):
        return entries[0]
    return folder


def _replaced(checksum_name: str, given: dict[str, Path | None]) -> bool:
    if checksum_name in ("labels.csv", "lesions.csv"):
        return given[checksum_name.removesuffix(".csv")] is not None
    return given["inputs"] is not None


@transaction.atomic
def evaluation_set_store(
    *, evaluation_set: EvaluationSet, actor: Any, inputs_zip: Path | None = None,
    labels: Path | None = None, lesions: Path | None = None,
) -> EvaluationSet:
    """Store new inputs (a zip of the inputs folder), a new labels CSV and/or (detection) a
    new lesions CSV for a set, with the import's checks and sha256 bookkeeping; the data
    card and provenance are renewed. A set's lesions are kept, and checked again, when only
    its inputs or labels change."""
    if inputs_zip is None and labels is None and lesions is None:
        return evaluation_set
    with tempfile.TemporaryDirectory(prefix="heldout-set-") as scratch:
        inputs = _stage_inputs(evaluation_set, inputs_zip, Path(scratch))
        labels_path = labels or private_path(evaluation_set.labels_file)
        lesions_path = lesions or (private_path(evaluation_set.lesions_file)
                                   if evaluation_set.lesions_file else None)
        data = check_data_files(inputs, labels_path, f"evaluation set {evaluation_set.name!r}",
                                lesions=lesions_path)
        values = stored_data_fields(evaluation_set.challenge, data)
        values["data_card"] = compute_data_card(inputs=inputs, labels=labels_path)
    given = {"inputs": inputs_zip, "labels": labels, "lesions": lesions}
    replaced = sorted(name for name, path in given.items() if path)
    values["provenance"] = [*evaluation_set.provenance, *provenance_entries(
        actor=actor, source=f"admin upload ({', '.join(replaced)})",
        checksums={k: v for k, v in values["checksums"].items() if _replaced(k, given)})]
    for name, value in values.items():
        setattr(evaluation_set, name, value)
    evaluation_set.full_clean()
    evaluation_set.save()
    audit_record(verb="evaluationset.files_replaced", actor=actor,
                 challenge=evaluation_set.challenge, target=f"evaluationset:{evaluation_set.pk}",
                 data={"replaced": replaced, "labels_sha256": values["checksums"]["labels.csv"],
                       "n_cases": evaluation_set.n_cases})
    _refresh_boards(evaluation_set.phases.values_list("pk", flat=True))
    return evaluation_set


def _refresh_boards(phase_pks: Any) -> None:
    """Boards of phases whose data or metrics changed: their results are stale now, and the
    boards say so as soon as they are recomputed."""
    for phase_pk in list(phase_pks):
        transaction.on_commit(lambda pk=phase_pk: dispatch.refresh_leaderboard(pk))


@transaction.atomic
def public_file_store(*, challenge: Challenge, name: str, source: Path, actor: Any) -> PublicFile:
    """Add or replace a public file (content-addressed under the private root)."""
    digest = sha256_file(source)
    stored = f"public/{challenge.slug}/{digest[:16]}/{Path(name).name}"
    target = private_root() / stored
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        target.chmod(0o644)
    item = PublicFile.objects.filter(challenge=challenge, name=name).first() or PublicFile(
        challenge=challenge, name=name)
    item.path, item.sha256, item.size = stored, digest, source.stat().st_size
    item.full_clean()
    item.save()
    audit_record(verb="publicfile.stored", actor=actor, challenge=challenge,
                 target=f"publicfile:{item.pk}", data={"name": name, "sha256": digest})
    return item


# --- publishing ------------------------------------------------------------------------


def _phase_problems(phase: Phase) -> list[str]:
    label = f"Phase “{phase.title}”"
    problems = []
    evaluation = phase.evaluation_set
    if evaluation is None:
        problems.append(f"{label} has no evaluation set.")
    elif evaluation.is_remote:
        problems += [f"{label}: {problem}" for problem in
                     source_problems(evaluation, phase.challenge.slug)]
    elif evaluation.n_cases == 0 or not evaluation.checksums:
        problems.append(f"{label}: its evaluation set “{evaluation.name}” has no cases; "
                        "upload its inputs and labels.")
    elif evaluation.n_positive in (0, evaluation.n_cases):
        problems.append(f"{label}: its evaluation set has only one class of labels.")
    if phase.sanity_set is not None and phase.sanity_set.n_cases == 0:
        problems.append(f"{label}: its sanity set “{phase.sanity_set.name}” has no cases.")
    if not phase.primary_metric:
        problems.append(f"{label} has no primary metric.")
    if not phase.submission_kinds:
        problems.append(f"{label} accepts no submission kind.")
    if not (phase.opens_at and phase.closes_at and phase.closes_at > phase.opens_at):
        problems.append(f"{label} has no valid window.")
    elif phase.closes_at <= timezone.now():
        problems.append(f"{label} has already closed ({phase.closes_at:%Y-%m-%d %H:%M} UTC).")
    return problems


def publish_problems(*, challenge: Challenge) -> list[str]:
    """What stops `challenge` from being published; empty when it is ready."""
    phases = list(challenge.phases.select_related("evaluation_set", "sanity_set"))
    if not phases:
        return ["The challenge has no phases."]
    return [problem for phase in phases for problem in _phase_problems(phase)]


@transaction.atomic
def challenge_publish(*, challenge: Challenge, actor: Any) -> Challenge:
    """Make a draft visible to everyone who may see it; NotReady lists what is missing."""
    challenge = Challenge.objects.select_for_update().get(pk=challenge.pk)
    if not challenge.is_draft:
        return challenge
    problems = publish_problems(challenge=challenge)
    if problems:
        raise NotReady(problems)
    challenge.status = Challenge.Status.PUBLISHED
    challenge.published_at = timezone.now()
    challenge.save(update_fields=["status", "published_at", "updated_at"])
    audit_record(verb="challenge.published", actor=actor, challenge=challenge,
                 data={"phases": list(challenge.phases.values_list("slug", flat=True))})
    return challenge


@transaction.atomic
def challenge_unpublish(*, challenge: Challenge, actor: Any) -> Challenge:
    """Back to draft (hidden from participants again), e.g. to fix a mistake."""
    updated = Challenge.objects.filter(pk=challenge.pk, status=Challenge.Status.PUBLISHED).update(
        status=Challenge.Status.DRAFT)
    if updated:
        audit_record(verb="challenge.unpublished", actor=actor, challenge=challenge)
    challenge.refresh_from_db()
    return challenge


@transaction.atomic
def organiser_team_ensure(*, challenge: Challenge, user: Any) -> Team:
    """The organisers' team (baselines, no rank) with `user` in it; created on first use."""
    if not selectors.is_organiser(challenge=challenge, user=user):
        raise ChallengeError("Only organisers of the challenge can submit baselines.")
    team = selectors.team_for_user(challenge=challenge, user=user)
    if team is not None:
        if not team.is_organiser_team:
            raise ChallengeError(f"You are in the participants' team “{team.name}” of this "
                                 "challenge; leave it to submit baselines.")
        return team
    team = Team.objects.filter(challenge=challenge, is_organiser_team=True).first()
    if team is None:
        team = Team.objects.create(challenge=challenge, name="Organisers (baselines)", captain=user,
                                   is_organiser_team=True)
        audit_record(verb="team.created", actor=user, challenge=challenge,
                     target=f"team:{team.pk}", data={"organisers": True})
    team.memberships.create(user=user, challenge=challenge)
    return team
