"""The REST API guide's curl examples (docs/team-scripts/rest-api.md) work as printed: each
line of its block is run by bash with real curl against a live server (URL, PASSWORD, TOKEN
and ID set as a reader would)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
import zipfile
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress

from challenges.bundles import import_challenge
from challenges.services import team_create
from submissions.models import Submission
from tests.bundles import write_bundle
from tests.conftest import REPO
from tests.factories import accept_terms
from tests.pipeline.conftest import AGE_MODEL

GUIDE = "docs/team-scripts/rest-api.md"
PASSWORD = "correct horse battery"  # UserFactory's
# Each command's status code on a line of its own after the body (nothing else is provided:
# the commands must work with curl and python3 alone).
PRELUDE = """
curl() { command curl -sS -w '\\n%{http_code}' "$@"; }
"""


def readme_commands() -> list[str]:
    """The curl lines of the REST API guide's "In one screen" block (docs/, served at /docs/)."""
    guide = (REPO / GUIDE).read_text()
    section = guide[guide.index("## In one screen"):]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None
    joined = block.group(1).replace("\\\n", " ")
    return [line for line in joined.splitlines() if line.startswith("curl ")]


def run(command: str, env: dict[str, str], cwd: Path) -> tuple[int, str]:
    done = subprocess.run(["bash", "-c", PRELUDE + command], env=env, cwd=cwd, timeout=60,
                          capture_output=True, text=True, check=True)
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


@pytest.mark.django_db(transaction=True)
def test_the_readmes_curl_examples_work_as_printed(live_server, tmp_path, alice, enqueue) -> None:
    EmailAddress.objects.create(user=alice, email=alice.email, verified=True, primary=True)
    challenge, _ = import_challenge(write_bundle(tmp_path / "bundle", slug="readmission-30d"))
    accept_terms(challenge, alice)
    team_create(challenge=challenge, user=alice, name="Alpha")
    with zipfile.ZipFile(tmp_path / "model.zip", "w") as archive:
        archive.writestr("predict.py", AGE_MODEL)
    env = {**os.environ, "URL": live_server.url, "PASSWORD": PASSWORD}
    login, listing, submit, status = readme_commands()

    code, body = run(login, env, tmp_path)
    assert code == 201, body
    env["TOKEN"] = json.loads(body)["key"]
    code, body = run(listing, env, tmp_path)
    assert code == 200 and json.loads(body)["results"][0]["slug"] == "readmission-30d"
    code, body = run(submit, env, tmp_path)
    enqueue.assert_called_once()
    assert code == 202, body
    env["ID"] = json.loads(body)["id"]
    assert uuid.UUID(Submission.objects.get(uid=env["ID"]).idempotency_key)
    code, body = run(status, env, tmp_path)
    assert code == 200 and json.loads(body)["status"] == "queued"
