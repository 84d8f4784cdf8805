"""Issue #20, attack 9: an organiser's challenge.yaml with nine nested anchors in `slug`
(9**9 strings once expanded) held a web worker until gunicorn killed it. Anchors and
aliases are refused with the line, by the import command and by the admin's "Import a
bundle", before anything is built; nothing is written.

Each path runs first in a forked child with a deadline, so that a regression fails the test
instead of hanging the suite (the expansion runs in C and ignores signals)."""

from __future__ import annotations

import html
import os
import pickle
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.urls import reverse

from challenges import lifecycle
from challenges.bundle_yaml import MAX_YAML_BYTES, parse_challenge_yaml
from challenges.exceptions import BundleError
from challenges.models import Challenge, EvaluationSet, Phase, PublicFile
from tests.bundles import write_bundle
from tests.challenges.test_lifecycle import zipped
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

REFUSED = "anchors and aliases (&name / *name) are not allowed"
# It takes milliseconds; the margin is for a loaded two-core machine. Today's code ran for
# minutes (gunicorn killed the worker after 120 s).
DEADLINE_S = 3.0


@pytest.fixture
def organiser(db):  # type: ignore[no-untyped-def]
    user = UserFactory(username="olga", is_staff=True)
    user.groups.add(Group.objects.get(name="Organisers"))
    return user


def bomb_slug(levels: int = 9) -> str:
    """`slug:` as a list of nine nested anchors, each nine aliases of the one before."""
    items = ['  - &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    items += [f"  - &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "slug:\n" + "\n".join(items) + "\n"


def bomb_bundle(root: Path) -> Path:
    write_bundle(root)
    document = yaml.safe_load((root / "challenge.yaml").read_text())
    document.pop("slug")
    rest = yaml.safe_dump(document, sort_keys=False)
    (root / "challenge.yaml").write_text(bomb_slug() + rest)
    return root


def in_child(action: Callable[[], Any], *, seconds: float = DEADLINE_S) -> tuple[Any, float]:
    """`action()`'s value (or the text of what it raised), computed in a forked child that is
    killed after `seconds`; and how long it took."""
    read, write = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(read)
        try:
            value: Any = action()
        except Exception as error:  # noqa: BLE001 (the refusal is the value)
            value = f"{type(error).__name__}: {error}"
        with os.fdopen(write, "wb") as out:
            pickle.dump(value, out)
        os._exit(0)
    os.close(write)
    while time.monotonic() - started < seconds:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.01)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read)
        pytest.fail(f"still running after {seconds} s: the YAML bomb was expanded")
    elapsed = time.monotonic() - started
    with os.fdopen(read, "rb") as answer:
        return pickle.load(answer), elapsed


def written() -> dict[str, int]:
    return {m.__name__: m.objects.count() for m in (Challenge, Phase, EvaluationSet, PublicFile)}


def test_the_bomb_is_refused_by_the_import_command(tmp_path, private_root) -> None:
    root = bomb_bundle(tmp_path / "bomb")
    before = written()

    def command() -> str:
        call_command("import_challenge", str(root))
        return "imported"

    answer, elapsed = in_child(command)
    assert answer.startswith("CommandError") and "challenge.yaml line 2: " + REFUSED in answer
    assert elapsed < DEADLINE_S
    with pytest.raises(CommandError, match="anchors and aliases"):  # and in this process
        call_command("import_challenge", str(root))
    assert written() == before == {"Challenge": 0, "Phase": 0, "EvaluationSet": 0,
                                   "PublicFile": 0}
    assert not any(private_root.iterdir())


def test_the_bomb_is_refused_by_the_admin_import(client, organiser, tmp_path, private_root
                                                 ) -> None:
    archive = zipped(bomb_bundle(tmp_path / "bomb"), tmp_path / "bomb.zip")

    def service() -> list[str]:  # what the admin's page calls
        try:
            lifecycle.challenge_import_zip(archive=archive, actor=organiser)
        except BundleError as error:
            return error.problems
        return []

    problems, _ = in_child(service)
    assert problems == ["challenge.yaml line 2: " + REFUSED + "."]
    client.force_login(organiser)  # the page, now known to answer at once
    with archive.open("rb") as handle:
        response = client.post(reverse("admin:challenges_challenge_import"), {"bundle": handle})
    assert response.status_code == 200
    assert "challenge.yaml line 2: " + REFUSED in html.unescape(response.content.decode())
    assert not any(written().values()) and not any(private_root.iterdir())


@pytest.mark.parametrize("text, problem", [
    ("base: &b {cpus: 1}\nlimits: *b\n", "line 1: anchors and aliases"),
    ("phases:\n  - <<: *x\n", "line 2: anchors and aliases"),
    ("slug: " + "[" * 40 + "]" * 40 + "\n", "nested more than 32 levels deep"),
    ("title: " + "x" * MAX_YAML_BYTES + "\n", "larger than 256 KB"),
])
def test_anchors_aliases_deep_nesting_and_huge_files_are_refused(text, problem) -> None:
    with pytest.raises(ValueError, match=problem.replace("(", r"\(")):
        parse_challenge_yaml(text)


def test_an_ordinary_challenge_yaml_still_reads(tmp_path) -> None:
    root = write_bundle(tmp_path / "ok")
    text = (root / "challenge.yaml").read_text()
    assert parse_challenge_yaml(text) == yaml.safe_load(text)
