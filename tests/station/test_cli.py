"""The station runs without Django, from its console script."""

from __future__ import annotations

import json
import subprocess

import pytest

from heldout_station import cli
from tests.station.conftest import PYTHON, REPO, SCRIPT, TOKEN, clean_env

IMPORTS = """
import json, sys
import heldout_station.cli
print(json.dumps({"django": sorted(m for m in sys.modules
                                   if m == "django" or m.startswith("django.")),
                  "loaded": [m for m in ("heldout_station.runner", "heldout_kernel.sandbox.docker",
                                         "heldout_kernel.aggregates", "heldout_kernel.validation")
                             if m in sys.modules]}))
"""


def test_it_imports_no_django():
    proc = subprocess.run([PYTHON, "-c", IMPORTS], cwd=REPO, env=clean_env(),
                          capture_output=True, text=True, timeout=60, check=True)
    modules = json.loads(proc.stdout)
    assert modules["django"] == []
    assert len(modules["loaded"]) == 4, "heldout_station.cli loads the whole station"


def test_its_console_script_prints_help():
    proc = subprocess.run([str(SCRIPT), "--help"], env=clean_env(), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "--data" in proc.stdout and "--once" in proc.stdout


def test_it_refuses_a_state_folder_inside_the_data(hidden, capsys):
    code = cli.main(["--url", "http://127.0.0.1:9", "--token", TOKEN, "--data",
                     str(hidden.root), "--state", str(hidden.root / "north" / "kept")])
    assert code == 2
    assert "--state must not be inside --data" in capsys.readouterr().err
    assert not (hidden.root / "north" / "kept").exists()


def test_it_needs_a_token(hidden, capsys, monkeypatch):
    monkeypatch.delenv("HELDOUT_STATION_TOKEN", raising=False)
    assert cli.main(["--url", "http://127.0.0.1:9", "--data", str(hidden.root)]) == 2
    assert "no token" in capsys.readouterr().err


def test_it_serves_the_challenges_of_its_command_line_or_else_its_environment(
        hidden, tmp_path, monkeypatch):
    base = ["--url", "http://127.0.0.1:9", "--data", str(hidden.root), "--state",
            str(tmp_path / "state")]
    parse = cli.build_parser().parse_args
    monkeypatch.setenv("HELDOUT_STATION_ALLOW", " chest-xray, skin_2 ,")
    assert cli._options(parse(base)).allow == {"chest-xray", "skin_2"}
    assert cli._options(parse([*base, "--allow", "a", "--allow", "b"])).allow == {"a", "b"}
    monkeypatch.delenv("HELDOUT_STATION_ALLOW")
    assert cli._options(parse(base)).allow == frozenset()
    with pytest.raises(cli.UsageError, match="'a.b' is not a challenge slug"):
        cli._options(parse([*base, "--allow", "a.b"]))


def test_it_has_no_option_to_send_logs(hidden, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--url", "http://127.0.0.1:9", "--token", TOKEN, "--data", str(hidden.root),
                  "--send-logs"])
    assert exit_.value.code == 2
    assert "unrecognized arguments: --send-logs" in capsys.readouterr().err
