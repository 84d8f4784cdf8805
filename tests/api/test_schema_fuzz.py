"""Schemathesis fuzzes the live API from its own OpenAPI schema, authenticated as Alice
(captain of Team A, in an open phase): no response may be a 5xx, and every response must
match the schema (status code, content type, headers, body). Negative cases (data the
schema forbids) must be refused with a 4xx.

Path parameters are drawn from dictionaries of real slugs and ids part of the time, so the
fuzzer reaches past the 404s into real challenges, submissions, uploads and invitations.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from accounts.services import token_create
from challenges.services import invitation_create
from submissions.services import upload_session_start

CHECKS = "all"
EXCLUDED_CHECKS = "positive_data_acceptance"
MAX_EXAMPLES = 5


def config(path: Path, values: dict[str, list[str]]) -> Path:
    """A schemathesis.toml drawing each path parameter from real values 70% of the time."""
    lines = []
    for name, choices in values.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(choices)}", ""]
    lines.append("[parameters]")
    lines += [f'"path.{name}" = {{ dictionary = "{name}", probability = 0.7 }}' for name in values]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def generous_rates(settings):  # type: ignore[no-untyped-def]
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        scope: "100000/minute" for scope in ("anon", "user", "token", "login")}}


def test_it_survives_schemathesis_without_5xx_or_schema_violations(
    transactional_db, live_server, tmp_path, generous_rates, phase, alice, team_a, team_c,
    submission_a, public_file, boards,
):  # type: ignore[no-untyped-def]
    invitation = invitation_create(team=team_a, user=alice)
    upload = upload_session_start(phase=phase, user=alice, kind="predictions",
                                  filename="p.csv", total_size=64)
    key = token_create(user=alice, name="fuzz").key
    toml = config(tmp_path / "schemathesis.toml", {
        "slug": [phase.challenge.slug], "phase": [phase.slug], "name": [public_file.name],
        "token": [invitation.token], "id": [str(submission_a.uid), str(upload.uid)],
    })
    command = [
        str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(toml), "run",
        f"{live_server.url}/api/schema/", "--url", live_server.url,
        "--header", f"Authorization: Token {key}",
        "--checks", CHECKS, "--exclude-checks", EXCLUDED_CHECKS,
        # One worker: schemathesis's threads trip a CPython 3.11 race in ast.parse
        # ("AST constructor recursion depth mismatch"), and one is deterministic.
        "--max-examples", str(MAX_EXAMPLES), "--seed", "20240601", "--workers", "1",
        "--phases", "examples,coverage,fuzzing", "--generation-database", "none",
        # Revoking the token in use would turn the rest of the run into 401s.
        "--exclude-operation-id", "auth_token_revoke",
        "--request-timeout", "20", "--no-color", "--suppress-health-check", "all",
    ]
    started = time.monotonic()
    # Run in tmp_path: schemathesis keeps a .schemathesis/ cache in its working directory.
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    # The summary and duration are printed (see them with `pytest -rP`), never asserted on.
    print(result.stdout[-2500:], f"\nschemathesis took {time.monotonic() - started:.1f} s")
    assert result.returncode == 0, result.stdout[-12000:] + result.stderr[-3000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
