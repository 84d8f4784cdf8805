"""The admin for organisers: Olga sees and edits only the challenge she organises; a staff
user who organises nothing sees none of it; a superuser sees everything."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib import admin
from django.db.models import Model
from django.urls import reverse

from challenges.models import (
    Challenge,
    EvaluationSet,
    Membership,
    Phase,
    Team,
    TermsAcceptance,
)
from core.models import AuditEvent
from scoring.admin import SubmissionAdmin
from submissions.models import Submission
from tests.factories import (
    ChallengeFactory,
    EvaluationSetFactory,
    PhaseFactory,
    SubmissionFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

SCOPED = [Challenge, Team, Membership, TermsAcceptance, EvaluationSet, Submission]


class World:
    """Olga's challenge and a second one, organised by Oscar, with rows of every kind."""

    def __init__(self, challenge: Challenge, team_a: Team, team_c: Team) -> None:
        self.mine = challenge
        self.oscar = UserFactory(username="oscar", is_staff=True)
        self.theirs = ChallengeFactory(slug="mammography", title="Mammography secret")
        self.theirs.organisers.add(self.oscar)
        self.their_team = TeamFactory(challenge=self.theirs, name="Their Team",
                                      captain=UserFactory(username="zed"))
        self.sets = {c.pk: EvaluationSetFactory(challenge=c, name=f"hidden-{c.slug}")
                     for c in (self.mine, self.theirs)}
        # Models only: predictions files are never scored on hidden inputs.
        self.phases = {c.pk: PhaseFactory(challenge=c, evaluation_set=self.sets[c.pk],
                                          submission_kinds=["bundle", "image"])
                       for c in (self.mine, self.theirs)}
        self.submissions = {
            c.pk: SubmissionFactory(phase=self.phases[c.pk], team=team)
            for c, team in ((self.mine, team_a), (self.theirs, self.their_team))
        }
        AuditEvent.objects.create(verb="test.mine", challenge_id=self.mine.pk)
        AuditEvent.objects.create(verb="test.theirs", challenge_id=self.theirs.pk)

    def rows(self, model: type[Model], challenge: Challenge) -> set[int]:
        lookup = {Challenge: "pk", Submission: "phase__challenge", Membership: "challenge"}
        path = lookup.get(model, "challenge")
        return set(model.objects.filter(**{path: challenge.pk}).values_list("pk", flat=True))


@pytest.fixture
def world(challenge, team_a, team_c) -> World:
    return World(challenge, team_a, team_c)


def changelist(model: type[Model]) -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")


def change(obj: Model) -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])


def listed(client: Any, model: type[Model]) -> set[int]:
    response = client.get(changelist(model))
    assert response.status_code == 200, (model, response.status_code)
    return {row.pk for row in response.context["cl"].result_list}


# --- an organiser ------------------------------------------------------------------------


@pytest.mark.parametrize("model", SCOPED, ids=lambda m: m.__name__)
def test_an_organiser_lists_only_rows_of_her_challenge(client, world, olga, model) -> None:
    mine = world.rows(model, world.mine)
    assert mine and world.rows(model, world.theirs)  # both challenges have rows to hide
    client.force_login(olga)

    assert listed(client, model) == mine


@pytest.mark.parametrize("model", SCOPED, ids=lambda m: m.__name__)
def test_an_organiser_cannot_open_rows_of_another_challenge(client, world, olga, model) -> None:
    client.force_login(olga)

    for pk in world.rows(model, world.theirs):
        obj = model.objects.get(pk=pk)
        response = client.get(change(obj))
        assert response.status_code in (302, 403, 404), (obj, response.status_code)
        assert str(obj) not in response.content.decode()
        assert client.post(change(obj), {}).status_code in (302, 403, 404)
    theirs = Challenge.objects.get(pk=world.theirs.pk)
    assert theirs.title == "Mammography secret"  # the refused POST changed nothing


@pytest.mark.parametrize("model", SCOPED, ids=lambda m: m.__name__)
def test_an_organiser_opens_rows_of_her_challenge(client, world, olga, model) -> None:
    client.force_login(olga)

    for pk in world.rows(model, world.mine):
        assert client.get(change(model.objects.get(pk=pk))).status_code == 200


@pytest.mark.parametrize("model", [Challenge, Team, Membership, TermsAcceptance, EvaluationSet,
                                   AuditEvent], ids=lambda m: m.__name__)
def test_list_filters_do_not_name_other_challenges(client, world, olga, model) -> None:
    client.force_login(olga)

    page = client.get(changelist(model)).content.decode()

    assert "Mammography secret" not in page
    assert "Their Team" not in page


def test_the_submission_filters_do_not_name_other_challenges(client, world, olga) -> None:
    client.force_login(olga)

    page = client.get(changelist(Submission)).content.decode()

    assert "Mammography secret" not in page


def test_an_organiser_sees_the_phases_of_her_challenge(client, world, olga) -> None:
    client.force_login(olga)

    response = client.get(change(world.mine))

    assert response.status_code == 200
    inlines = {f.opts.model for f in response.context["inline_admin_formsets"]}
    assert Phase in inlines
    assert world.phases[world.mine.pk].slug in response.content.decode()


def test_an_organiser_sees_the_members_of_a_team(client, world, olga, team_a) -> None:
    client.force_login(olga)

    response = client.get(change(team_a))

    inlines = {f.opts.model for f in response.context["inline_admin_formsets"]}
    assert Membership in inlines
    assert "bob" in response.content.decode()


def test_an_organiser_edits_her_challenge_but_not_its_slug_or_organisers(
    client, world, olga
) -> None:
    client.force_login(olga)

    response = client.get(change(world.mine))

    fields = response.context["adminform"].form.fields
    assert "title" in fields
    assert "slug" not in fields and "organisers" not in fields


def test_an_organiser_adds_and_deletes_nothing(client, world, olga, team_a) -> None:
    client.force_login(olga)

    assert client.get(reverse("admin:challenges_challenge_add")).status_code == 403
    delete = reverse("admin:challenges_team_delete", args=[team_a.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert Team.objects.filter(pk=team_a.pk).exists()


def test_the_admin_index_shows_an_organiser_her_models(client, world, olga) -> None:
    client.force_login(olga)

    response = client.get(reverse("admin:index"))

    assert response.status_code == 200
    models = {m["object_name"] for app in response.context["app_list"] for m in app["models"]}
    assert {"Challenge", "Team", "Membership", "TermsAcceptance", "EvaluationSet",
            "Submission"} <= models


# --- a staff user who organises nothing --------------------------------------------------


@pytest.mark.parametrize("model", SCOPED, ids=lambda m: m.__name__)
def test_staff_who_organise_nothing_get_no_access(client, world, model) -> None:
    client.force_login(UserFactory(username="sam", is_staff=True))

    assert client.get(changelist(model)).status_code == 403
    for challenge in (world.mine, world.theirs):
        for pk in world.rows(model, challenge):
            response = client.get(change(model.objects.get(pk=pk)))
            assert response.status_code in (302, 403, 404)


def test_staff_who_organise_nothing_see_an_empty_admin_index(client, world) -> None:
    client.force_login(UserFactory(username="sam", is_staff=True))

    response = client.get(reverse("admin:index"))

    assert response.status_code == 200
    assert response.context["app_list"] == []


def test_participants_are_sent_to_the_admin_login(client, world, alice) -> None:
    client.force_login(alice)

    response = client.get(changelist(Team))

    assert response.status_code == 302 and "/admin/login/" in response["Location"]


# --- a superuser -------------------------------------------------------------------------


@pytest.mark.parametrize("model", SCOPED, ids=lambda m: m.__name__)
def test_a_superuser_sees_everything(client, world, model) -> None:
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))

    everything = world.rows(model, world.mine) | world.rows(model, world.theirs)
    assert listed(client, model) == everything
    for pk in everything:
        assert client.get(change(model.objects.get(pk=pk))).status_code == 200


# --- actions -----------------------------------------------------------------------------


def test_submissions_have_a_rescore_action() -> None:
    assert "rescore" in SubmissionAdmin.actions
    model_admin = admin.site.get_model_admin(Submission)
    assert isinstance(model_admin, SubmissionAdmin)
    assert model_admin.rescore.short_description == "Re-score the selected submissions"


# --- editing through the admin -----------------------------------------------------------


class _FormValues(HTMLParser):
    """The values a browser would submit for the admin's change form, as rendered."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, list[str]] = {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "button", "file"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self.values.setdefault(name, []).append(a.get("value", "on"))
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and "selected" in a:
            self.values.setdefault(self._select, []).append(a.get("value", ""))
        elif tag == "textarea" and name:
            self._textarea = name
            self.values[name] = [""]

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.values[self._textarea][0] += data.removeprefix("\n")


def form_values(html: str) -> dict[str, Any]:
    parser = _FormValues()
    parser.feed(html)
    return {k: v if len(v) > 1 else v[0] for k, v in parser.values.items()}


def test_an_organiser_edits_a_phase_of_her_challenge_in_the_admin(client, world, olga) -> None:
    client.force_login(olga)
    url = change(world.mine)
    data = form_values(client.get(url).content.decode())
    prefix = next(k.removesuffix("-TOTAL_FORMS") for k in data
                  if k.endswith("-TOTAL_FORMS") and data[k] == "1" and k.startswith("phases"))
    data[f"{prefix}-0-quota_per_day"] = "7"
    data["title"] = "Readmission, revised"

    response = client.post(url, data)

    assert response.status_code == 302, response.context and [
        f.formset.errors for f in response.context["inline_admin_formsets"]]
    phase = Phase.objects.get(pk=world.phases[world.mine.pk].pk)
    assert phase.quota_per_day == 7
    assert Challenge.objects.get(pk=world.mine.pk).title == "Readmission, revised"


def test_a_phase_cannot_point_at_another_challenges_hidden_data(client, world, olga) -> None:
    client.force_login(olga)
    url = change(world.mine)
    data = form_values(client.get(url).content.decode())
    prefix = next(k.removesuffix("-TOTAL_FORMS") for k in data
                  if k.endswith("-TOTAL_FORMS") and k.startswith("phases"))
    data[f"{prefix}-0-evaluation_set"] = str(world.sets[world.theirs.pk].pk)

    response = client.post(url, data)

    assert response.status_code == 200  # the form comes back with an error
    phase = Phase.objects.get(pk=world.phases[world.mine.pk].pk)
    assert phase.evaluation_set == world.sets[world.mine.pk]


def test_a_superuser_deletes_a_challenge_that_has_no_submissions(client, world) -> None:
    spare = ChallengeFactory(slug="spare")
    hidden = EvaluationSetFactory(challenge=spare)
    PhaseFactory(challenge=spare, evaluation_set=hidden, sanity_set=hidden)
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))

    url = reverse("admin:challenges_challenge_delete", args=[spare.pk])
    response = client.post(url, {"post": "yes"})

    assert response.status_code == 302
    assert not Challenge.objects.filter(pk=spare.pk).exists()
    assert not EvaluationSet.objects.filter(pk=hidden.pk).exists()


def test_hidden_data_in_use_by_a_phase_cannot_be_deleted_alone(client, world) -> None:
    hidden = world.sets[world.mine.pk]
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))

    url = reverse("admin:challenges_evaluationset_delete", args=[hidden.pk])
    response = client.post(url, {"post": "yes"})

    assert response.status_code == 200  # the confirmation page names what blocks it
    assert "would require deleting the following protected related objects" in (
        response.content.decode())
    assert EvaluationSet.objects.filter(pk=hidden.pk).exists()
