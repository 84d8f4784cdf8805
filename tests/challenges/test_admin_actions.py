"""Issue #20, attack 6: any organiser could accept any station's changed fingerprints (an
admin action without permission or scoping, audited under her name).

Every action of every ModelAdmin on the admin site, every delete and change path, every
custom admin URL and the site's own object URLs are enumerated from the site itself (none is
listed by hand) and tried by Olga, organiser of one challenge, against the rows of Oscar's
challenge and Oscar's station: each is refused or a no-op, and the database, audit trail
included, is unchanged. A model, action or URL the test cannot build input for fails it.
Then the right person (Olga on her own rows, a superuser where only superusers may) does each.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from allauth.account.models import EmailAddress
from django.apps import apps
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.models import Session
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Model
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, reverse
from django.utils import timezone

from accounts.services import token_create
from challenges.bundles import check_data_files, stored_data_fields
from challenges.models import (
    Announcement,
    Challenge,
    EvaluationSet,
    Invitation,
    JoinRequest,
    PublicFile,
    Station,
    StationDataset,
)
from challenges.selectors import ORGANISERS_GROUP
from core.models import AuditEvent
from core.services import audit_record
from core.storage import private_root
from leaderboards.models import LeaderboardSnapshot
from scoring.models import CollusionFlag, StationJob
from submissions.models import UploadSession
from tests.bundles import write_bundle
from tests.challenges.test_admin_scoping import form_values
from tests.factories import (
    ChallengeFactory,
    EvaluationSetFactory,
    PhaseFactory,
    ResultFactory,
    RunFactory,
    SubmissionFactory,
    TeamFactory,
    UserFactory,
    add_member,
)

pytestmark = pytest.mark.django_db

REGISTERED = sorted(admin.site._registry, key=lambda m: m._meta.label)
FINGERPRINT = {"sha256": "a" * 64, "files": 2, "n_cases": 40, "n_positive": 10,
               "n_lesions": None, "parts": {}}


def label(model: type[Model]) -> str:
    return model._meta.label


# --- the world: two challenges, each with a row of every model the admin registers ---------


class Side:
    """One organiser's challenge (ready to publish), its station and one row of every
    registered model (several where one needs another), all named after `tag`."""

    def __init__(self, *, tag: str, organiser: Any) -> None:
        self.tag, self.organiser = tag, organiser
        self.rows: dict[type[Model], list[Model]] = defaultdict(list)
        self.challenge = self.add(ChallengeFactory(slug=tag, title=f"{tag} secret"))
        self.challenge.organisers.add(organiser)
        self.captain = self.add(UserFactory(username=f"{tag}-captain"))
        self.member = self.add(UserFactory(username=f"{tag}-member"))
        self.add(Group.objects.create(name=f"{tag}-reviewers"))
        self.add(EmailAddress.objects.create(user=self.captain, email=f"{tag}@example.org",
                                             primary=True, verified=False))
        self.add(token_create(user=self.captain, name=f"{tag} laptop").token)
        self._data()
        self._teams()
        self._submissions()
        self._station()
        self.add(audit_record(verb="test.event", challenge=self.challenge))

    def add(self, obj: Any) -> Any:
        self.rows[type(obj)].append(obj)
        return obj

    def _data(self) -> None:
        self.hidden = self.add(EvaluationSetFactory(
            challenge=self.challenge, name="hidden", n_cases=40, n_positive=10,
            checksums={"labels.csv": "0" * 64}))
        self.station_name = f"{self.tag}-station"
        self.remote = self.add(EvaluationSetFactory(
            challenge=self.challenge, name="remote",
            sources=[{"station": self.station_name, "dataset": "cohort"}]))
        self.phase = PhaseFactory(challenge=self.challenge, evaluation_set=self.hidden,
                                  submission_kinds=["bundle", "image"])
        self.add(PublicFile.objects.create(challenge=self.challenge, name="train.csv",
                                           path=f"public/{self.tag}/train.csv",
                                           sha256="1" * 64, size=10))
        self.add(Announcement.objects.create(
            challenge=self.challenge, title=f"{self.tag} news", body="Deadline moved.",
            shown_until=timezone.now() + timedelta(days=7)))

    def _teams(self) -> None:
        self.team = self.add(TeamFactory(challenge=self.challenge, name=f"{self.tag} team",
                                         captain=self.captain))
        add_member(self.team, self.member)
        for membership in self.team.memberships.all():
            self.add(membership)
        for acceptance in self.challenge.acceptances.all():
            self.add(acceptance)
        self.add(Invitation.objects.create(
            team=self.team, token=hashlib.sha256(self.tag.encode()).hexdigest(),
            created_by=self.captain, expires_at=timezone.now() + timedelta(days=7)))
        asker = UserFactory(username=f"{self.tag}-asker")
        self.add(JoinRequest.objects.create(team=self.team, user=asker))

    def _submissions(self) -> None:
        failed = self.add(SubmissionFactory(phase=self.phase, team=self.team, status="failed",
                                            error_class="timeout", attempts=1))
        scored = self.add(ResultFactory(submission__phase=self.phase,
                                        submission__team=self.team)).submission
        self.add(scored)
        RunFactory(submission=failed)
        self.add(CollusionFlag.objects.create(submission=failed, other=scored,
                                              kind=CollusionFlag.Kind.SAME_UPLOAD))
        self.add(UploadSession.objects.create(user=self.captain, phase=self.phase,
                                              kind="bundle", filename="m.zip", total_size=10))
        self.add(LeaderboardSnapshot.objects.create(phase=self.phase, board="public"))
        self.failed = failed

    def _station(self) -> None:
        self.station = self.add(Station.objects.create(
            name=self.station_name, token_hash=hashlib.sha256(self.tag.encode()).hexdigest(),
            allowed_challenges=[self.challenge.slug]))
        self.dataset = StationDataset.objects.create(
            station=self.station, name="cohort", fingerprint=FINGERPRINT,
            reported_at=timezone.now(), changed_at=timezone.now())
        StationJob.objects.create(submission=self.failed, attempt=1, station=self.station,
                                  dataset="cohort")


@dataclass
class World:
    olga: Any
    oscar: Any
    root: Any
    mine: Side
    theirs: Side


@pytest.fixture
def world(olga) -> World:
    oscar = UserFactory(username="oscar", is_staff=True)
    organisers = Group.objects.get(name=ORGANISERS_GROUP)
    for user in (olga, oscar):  # both may create challenges: the most an organiser may do
        user.groups.add(organisers)
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    built = World(olga=olga, oscar=oscar, root=root, mine=Side(tag="mine", organiser=olga),
                  theirs=Side(tag="theirs", organiser=oscar))
    for side in (built.mine, built.theirs):
        missing = [label(m) for m in REGISTERED if not side.rows.get(m)]
        assert not missing, f"Side builds no rows of {missing}: teach it (this test's world)"
    return built


# --- the database, every table but sessions --------------------------------------------


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    state = {}
    for model in apps.get_models(include_auto_created=True):
        if model is Session:  # logins and messages, not data
            continue
        rows = model._base_manager.order_by("pk").values_list()
        state[label(model)] = [tuple(bytes(v) if isinstance(v, memoryview) else v
                                     for v in row) for row in rows]
    return state


def changed_tables(before: dict[str, list[Any]], after: dict[str, list[Any]]) -> list[str]:
    return sorted(name for name in after if before.get(name) != after[name])


def last_event_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def changelist(model: type[Model]) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def admin_request(user: Any) -> Any:
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def every_action(model_admin: admin.ModelAdmin, users: list[Any]) -> list[str]:
    """Every action the admin declares (before permission filtering) and every action it
    offers to `users`: one an organiser is not offered may still be posted."""
    names = {name for _, name, _ in model_admin._get_base_actions()}
    for user in users:
        names |= set(model_admin.get_actions(admin_request(user)))
    return sorted(names)


def post_action(client: Any, model: type[Model], name: str, rows: list[Model]) -> Any:
    # `post` answers a confirmation page (delete_selected) at once.
    return client.post(changelist(model), {"action": name, "post": "yes",
                                           helpers.ACTION_CHECKBOX_NAME: [r.pk for r in rows]})


# --- actions, change and delete pages: Olga against Oscar's rows --------------------------


@pytest.mark.parametrize("model", REGISTERED, ids=label)
def test_no_action_touches_rows_of_a_challenge_she_does_not_organise(client, world, model):
    model_admin = admin.site.get_model_admin(model)
    theirs = world.theirs.rows[model]
    client.force_login(world.olga)

    for name in every_action(model_admin, [world.olga, world.root]):
        before = snapshot()
        response = post_action(client, model, name, theirs)
        assert response.status_code in (200, 302, 403), (name, response.status_code)
        assert changed_tables(before, snapshot()) == [], f"{label(model)}: {name}"


@pytest.mark.parametrize("model", REGISTERED, ids=label)
def test_no_delete_or_change_page_touches_rows_she_does_not_organise(client, world, model):
    opts = model._meta
    client.force_login(world.root)
    forms = {obj.pk: form_values(client.get(reverse(
        f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])).content.decode())
        for obj in world.theirs.rows[model]}
    client.force_login(world.olga)

    for obj in world.theirs.rows[model]:
        for page, data in (("delete", {"post": "yes"}), ("change", forms[obj.pk]),
                           ("history", None)):
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_{page}", args=[obj.pk])
            before = snapshot()
            response = client.post(url, data) if data is not None else client.get(url)
            assert response.status_code in (302, 403, 404), (page, obj, response.status_code)
            assert changed_tables(before, snapshot()) == [], (page, obj)
            assert client.get(url).status_code in (302, 403, 404), (page, obj)


# --- custom admin URLs -------------------------------------------------------------------


@dataclass
class Probe:
    """One request to a custom admin URL. `reads`: it shows the object (a stranger to it is
    refused outright). `changes`: done by `actor` on their own rows, it writes something."""

    method: str
    url: str
    data: dict[str, Any] = field(default_factory=dict)
    reads: bool = False
    changes: bool = False
    actor: str = "organiser"  # or "superuser": the one who may do it on the positive side


def _zip(root: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as out:
        for path in sorted(root.rglob("*")):
            out.write(path, path.relative_to(root))
    return target


def _import(world: World, side: Side, tmp: Path) -> list[Probe]:
    # Against Oscar: a bundle with his challenge's slug. Her own: a new challenge.
    slug = side.challenge.slug if side is world.theirs else f"{side.tag}-new"
    archive = _zip(write_bundle(tmp / f"bundle-{slug}", slug=slug), tmp / f"{slug}.zip")
    upload = SimpleUploadedFile("bundle.zip", archive.read_bytes())
    return [Probe("POST", reverse("admin:challenges_challenge_import"), {"bundle": upload},
                  changes=True)]


def _publish(world: World, side: Side, tmp: Path) -> list[Probe]:
    Challenge.objects.filter(pk=side.challenge.pk).update(status=Challenge.Status.DRAFT)
    return [Probe("POST", reverse("admin:challenges_challenge_publish",
                                  args=[side.challenge.pk]), changes=True)]


def _unpublish(world: World, side: Side, tmp: Path) -> list[Probe]:
    return [Probe("POST", reverse("admin:challenges_challenge_unpublish",
                                  args=[side.challenge.pk]), changes=True)]


def _dashboard(world: World, side: Side, tmp: Path) -> list[Probe]:
    url = reverse("admin:challenges_challenge_dashboard", args=[side.challenge.pk])
    model = SimpleUploadedFile("model.zip", _baseline_zip())
    return [Probe("GET", url, reads=True),
            Probe("POST", url, {"phase": side.phase.pk, "model": model}, changes=True)]


def _dashboard_live(world: World, side: Side, tmp: Path) -> list[Probe]:
    url = reverse("admin:challenges_challenge_dashboard_live", args=[side.challenge.pk])
    return [Probe("GET", url, reads=True)]


def _export(world: World, side: Side, tmp: Path) -> list[Probe]:
    # Real files for the hidden set, so that there is something to export; what the export
    # changes is the audit trail.
    folder = tmp / f"export-{side.tag}"
    (folder / "inputs").mkdir(parents=True)
    (folder / "inputs" / "features.csv").write_text("id,age\nc0,1\n")
    (folder / "labels.csv").write_text("id,label\nc0,1\n")
    stored = stored_data_fields(side.challenge, check_data_files(
        folder / "inputs", folder / "labels.csv", "export"))
    EvaluationSet.objects.filter(pk=side.hidden.pk).update(**stored)
    public = private_root() / f"public/{side.tag}/train.csv"
    public.parent.mkdir(parents=True, exist_ok=True)
    public.write_text("id,age,label\nt0,1,0\n")
    url = reverse("admin:challenges_challenge_export", args=[side.challenge.pk])
    return [Probe("POST", url, reads=True, changes=True)]


def _baseline_zip() -> bytes:
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        out.writestr("predict.py", "print(1)\n")
    return buffer.getvalue()


def _password(world: World, side: Side, tmp: Path) -> list[Probe]:
    url = reverse("admin:auth_user_password_change", args=[side.captain.pk])
    secret = "a-new-long-password-7"
    return [Probe("GET", url, reads=True, actor="superuser"),
            Probe("POST", url, {"password1": secret, "password2": secret,
                                "usable_password": "true"}, changes=True, actor="superuser")]


# Input for each custom URL of a ModelAdmin, by URL name. A custom URL without an entry here
# fails the test: whoever adds one says how to try it.
CUSTOM_URLS: dict[str, Callable[[World, Side, Path], list[Probe]]] = {
    "challenges_challenge_import": _import,
    "challenges_challenge_publish": _publish,
    "challenges_challenge_unpublish": _unpublish,
    "challenges_challenge_dashboard": _dashboard,
    "challenges_challenge_dashboard_live": _dashboard_live,
    "challenges_challenge_export": _export,
    "auth_user_password_change": _password,
}


def _standard(model_admin: admin.ModelAdmin) -> set[tuple[str, str | None]]:
    plain = admin.ModelAdmin(model_admin.model, model_admin.admin_site)
    return {(str(p.pattern), p.name) for p in plain.get_urls()}


def custom_urls() -> list[str]:
    """Names of the URLs ModelAdmins add to Django's own (changelist, add, change, ...)."""
    found = []
    for model in REGISTERED:
        model_admin = admin.site.get_model_admin(model)
        standard = _standard(model_admin)
        for pattern in model_admin.get_urls():
            if (str(pattern.pattern), pattern.name) not in standard:
                found.append(pattern.name or f"{label(model)}:{pattern.pattern}")
    return found


def test_every_custom_admin_url_has_input_here() -> None:
    unknown = sorted(set(custom_urls()) - set(CUSTOM_URLS))
    assert not unknown, f"custom admin URLs this test cannot try: {unknown}; add to CUSTOM_URLS"
    assert set(CUSTOM_URLS) <= set(custom_urls())  # no stale entries


@pytest.mark.parametrize("name", sorted(CUSTOM_URLS))
def test_no_custom_admin_url_acts_for_her_on_another_challenge(client, world, name, tmp_path):
    probes = CUSTOM_URLS[name](world, world.theirs, tmp_path)
    client.force_login(world.olga)

    for probe in probes:
        before = snapshot()
        with mock.patch("core.dispatch.send", autospec=True) as sent:
            response = client.get(probe.url) if probe.method == "GET" else \
                client.post(probe.url, probe.data)
        assert changed_tables(before, snapshot()) == [], probe
        sent.assert_not_called()
        if probe.reads:
            assert response.status_code in (403, 404), probe


@pytest.mark.parametrize("name", sorted(CUSTOM_URLS))
def test_the_right_person_uses_each_custom_admin_url(client, world, name, tmp_path):
    probes = CUSTOM_URLS[name](world, world.mine, tmp_path)

    for probe in probes:
        actor = world.olga if probe.actor == "organiser" else world.root
        client.force_login(actor)
        before, since = snapshot(), last_event_id()
        with mock.patch("core.dispatch.send", autospec=True):
            response = client.get(probe.url) if probe.method == "GET" else \
                client.post(probe.url, probe.data)
        assert response.status_code in (200, 302), (probe, response.status_code)
        if probe.changes:
            assert changed_tables(before, snapshot()), f"{name} did nothing: {probe}"
        assert _audited_only_as(actor, world.theirs, since), probe


# --- the site's own object URLs ----------------------------------------------------------


def site_urls() -> list[str]:
    return sorted(p.name or str(p.pattern) for p in admin.site.get_urls()
                  if isinstance(p, URLPattern))


# Site pages that take no object (they show the user's own menu, account or nothing).
SITE_PAGES_WITHOUT_OBJECTS = {"index", "login", "logout", "password_change",
                              "password_change_done", "jsi18n", "app_list", "(?P<url>.*)$"}
SITE_PAGES_WITH_OBJECTS = {"view_on_site", "autocomplete"}


def test_every_site_url_is_tried_here() -> None:
    assert not [p for p in admin.site.get_urls() if not isinstance(p, URLPattern | URLResolver)]
    unknown = set(site_urls()) - SITE_PAGES_WITHOUT_OBJECTS - SITE_PAGES_WITH_OBJECTS
    assert not unknown, f"admin site URLs this test cannot try: {sorted(unknown)}"


@pytest.mark.parametrize("model", REGISTERED, ids=label)
def test_view_on_site_does_not_lead_to_rows_she_does_not_organise(client, world, model):
    """Django's "view on site" redirect looks up any row of any model by id: for an
    invitation that is its secret link, for a draft challenge its slug."""
    content_type = ContentType.objects.get_for_model(model)
    client.force_login(world.olga)

    for obj in world.theirs.rows[model]:
        url = reverse("admin:view_on_site", args=[content_type.pk, obj.pk])
        response = client.get(url)
        assert response.status_code in (403, 404), (obj, response.status_code,
                                                    response.get("Location"))


def test_view_on_site_still_leads_to_her_own_rows(client, world):
    invitation = world.mine.rows[Invitation][0]
    content_type = ContentType.objects.get_for_model(Invitation)
    client.force_login(world.olga)

    response = client.get(reverse("admin:view_on_site", args=[content_type.pk, invitation.pk]))

    assert response.status_code == 302 and invitation.token in response["Location"]


@pytest.mark.parametrize("model", REGISTERED, ids=label)
def test_autocomplete_names_no_rows_she_does_not_organise(client, world, model):
    client.force_login(world.olga)

    for relation in model._meta.get_fields():
        if relation.auto_created or not (relation.many_to_one or relation.many_to_many):
            continue  # autocomplete follows a model's own foreign keys
        target = relation.related_model
        if not admin.site.is_registered(target):
            continue
        response = client.get(reverse("admin:autocomplete"), {
            "app_label": model._meta.app_label, "model_name": model._meta.model_name,
            "field_name": relation.name, "term": ""})
        theirs = {str(obj.pk) for obj in world.theirs.rows[target]}
        if response.status_code == 200:
            assert not theirs & {r["id"] for r in response.json()["results"]}, relation
        else:
            assert response.status_code in (403, 404), relation


# --- the right organiser does each action offered to her ----------------------------------


def _audited_only_as(actor: Any, foreign: Side, since: int) -> bool:
    """Every event written since `since` names `actor`, and none names `foreign`'s
    challenge."""
    events = AuditEvent.objects.filter(id__gt=since)
    return all(e.actor_id == actor.pk and e.challenge_id != foreign.challenge.pk
               for e in events)


def offered(user: Any) -> list[tuple[type[Model], str]]:
    """The actions `user` is offered: on the lists they may open."""
    request = admin_request(user)
    return [(model, name) for model in REGISTERED
            if (model_admin := admin.site.get_model_admin(model)).has_view_or_change_permission(
                request)
            for name in model_admin.get_actions(request)]


def test_she_does_each_action_offered_to_her_on_her_own_rows(client, world):
    client.force_login(world.olga)

    assert {(Station, "accept_changes"), (PublicFile, "delete_selected")} <= set(
        offered(world.olga))
    for model, name in offered(world.olga):
        before, since = snapshot(), last_event_id()
        response = post_action(client, model, name, world.mine.rows[model])
        assert response.status_code == 302, (label(model), name)
        assert changed_tables(before, snapshot()), f"{label(model)}: {name} did nothing"
        assert _audited_only_as(world.olga, world.theirs, since), (label(model), name)


def test_she_is_offered_no_action_she_may_not_do(world):
    """Offered means permitted: deleting others' rows, users, groups and tokens is not."""
    assert {(label(model), name) for model, name in offered(world.olga)} == {
        ("challenges.Station", "accept_changes"), ("challenges.PublicFile", "delete_selected"),
        ("submissions.Submission", "rescore")}


def test_a_selection_with_one_row_she_does_not_organise_is_refused_whole(client, world):
    mine, theirs = world.mine.failed, world.theirs.failed
    client.force_login(world.olga)
    before = snapshot()

    response = client.post(changelist(type(mine)), {
        "action": "rescore", helpers.ACTION_CHECKBOX_NAME: [mine.pk, theirs.pk]}, follow=True)

    assert "not yours to act on" in response.content.decode()
    assert changed_tables(before, snapshot()) == []


def test_deleting_her_public_files_in_bulk_is_audited(client, world):
    public = world.mine.rows[PublicFile][0]
    client.force_login(world.olga)

    post_action(client, PublicFile, "delete_selected", [public])

    assert not PublicFile.objects.filter(pk=public.pk).exists()
    event = AuditEvent.objects.get(verb="publicfile.deleted")
    assert (event.actor_id, event.challenge_id) == (world.olga.pk, world.mine.challenge.pk)


# --- stations: who accepts a changed fingerprint ---------------------------------------------


def _changed(dataset: StationDataset) -> bool:
    return StationDataset.objects.get(pk=dataset.pk).changed_at is not None


def _accepted_as(user: Any) -> list[str]:
    return sorted(e.data["dataset"] for e in AuditEvent.objects.filter(
        verb="station.dataset_accepted", actor_id=user.pk))


def test_attack_she_cannot_accept_the_changed_fingerprint_of_his_station(client, world):
    client.force_login(world.olga)

    response = post_action(client, Station, "accept_changes", [world.theirs.station])

    assert response.status_code == 302
    assert _changed(world.theirs.dataset)
    assert _accepted_as(world.olga) == []


def test_she_lists_only_stations_her_challenges_use(client, world):
    client.force_login(world.olga)

    response = client.get(changelist(Station))

    assert {s.pk for s in response.context["cl"].result_list} == {world.mine.station.pk}
    assert world.theirs.station.name not in response.content.decode()


def _shared_station(world: World, datasets: dict[str, list[Side]]) -> Station:
    """A station serving both challenges; `datasets` names which sides' remote sets use
    each of its datasets (all changed)."""
    station = Station.objects.create(
        name="shared", token_hash="f" * 64,
        allowed_challenges=sorted(s.challenge.slug for s in (world.mine, world.theirs)))
    for name, sides in datasets.items():
        StationDataset.objects.create(station=station, name=name, fingerprint=FINGERPRINT,
                                      changed_at=timezone.now())
        for side in sides:
            side.remote.sources = [*side.remote.sources, {"station": "shared", "dataset": name}]
            side.remote.save()
    return station


def test_on_a_shared_station_she_accepts_only_the_datasets_of_her_challenge(client, world):
    station = _shared_station(world, {"hers": [world.mine], "his": [world.theirs]})
    client.force_login(world.olga)

    response = post_action(client, Station, "accept_changes", [station])

    assert response.status_code == 302
    datasets = {d.name: d.changed_at for d in station.datasets.all()}
    assert datasets["hers"] is None and datasets["his"] is not None
    assert _accepted_as(world.olga) == ["hers"]


def test_a_dataset_two_organisers_use_is_accepted_by_a_superuser_not_by_one_of_them(
        client, world):
    station = _shared_station(world, {"both": [world.mine, world.theirs]})
    both = station.datasets.get()
    client.force_login(world.olga)

    post_action(client, Station, "accept_changes", [station])

    assert _changed(both) and _accepted_as(world.olga) == []
    client.force_login(world.root)
    post_action(client, Station, "accept_changes", [station])
    assert not _changed(both) and _accepted_as(world.root) == ["both"]


def test_she_cannot_accept_for_a_station_that_does_not_serve_her_challenge(client, world):
    Station.objects.filter(pk=world.mine.station.pk).update(allowed_challenges=[])
    client.force_login(world.olga)

    post_action(client, Station, "accept_changes", [world.mine.station])

    assert _changed(world.mine.dataset) and _accepted_as(world.olga) == []


def test_a_superuser_accepts_any_stations_changes(client, world):
    client.force_login(world.root)

    post_action(client, Station, "accept_changes", [world.mine.station, world.theirs.station])

    assert not _changed(world.mine.dataset) and not _changed(world.theirs.dataset)
    assert _accepted_as(world.root) == ["cohort", "cohort"]


def test_staff_who_organise_nothing_accept_nothing(client, world):
    client.force_login(UserFactory(username="sam", is_staff=True))

    response = post_action(client, Station, "accept_changes", [world.theirs.station])

    assert response.status_code == 403
    assert _changed(world.theirs.dataset)
