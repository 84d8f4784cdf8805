"""The `heldout` CLI (the `heldout-cli` distribution in client/) against a scripted HTTP
server on 127.0.0.1 (real sockets and HTTP, no mocks of httpx): config files and their
permissions, kind detection, tables, error lines and exit codes, streamed and resumable
uploads, waiting for a final state. Pure client tests: no database, no Django."""

from __future__ import annotations

import email.parser
import gzip
import io
import json
import os
import socket
import stat
import tarfile
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest

from heldout_cli import cli, config, output, upload
from heldout_cli.api import ApiClient, ApiError

TOKEN = "hld_unit-test-token"
SUB_ID = "1b4e28ba-2fa1-41d2-883f-0016d3cca427"

# --- a scripted server ---------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"{}")


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-encoded unless `raw` is given
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering


Route = Callable[[Seen], Reply] | list[Reply] | Reply


class FakeApi:
    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.seen: list[Seen] = []
        self.url = ""

    def on(self, method: str, path: str, reply: Route) -> None:
        """A Reply, Replies given in turn (the last one repeats), or a function of the request."""
        self.routes[(method, "/api/v1/" + path)] = reply

    def to(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path == "/api/v1/" + path]

    def answer(self, seen: Seen) -> Reply:
        self.seen.append(seen)
        route = self.routes.get((seen.method, seen.path))
        if route is None:
            return Reply(404, {"code": "not_found", "detail": "No such API endpoint."})
        if isinstance(route, Reply):
            return route
        if isinstance(route, list):
            return route.pop(0) if len(route) > 1 else route[0]
        return route(seen)


def _handler(api: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            reply = api.answer(Seen(self.command, parts.path, query, dict(self.headers), body))
            if reply.drop:
                self.close_connection = True
                return
            payload = reply.raw if reply.raw is not None else (
                b"" if reply.body is None else json.dumps(reply.body).encode())
            self.send_response(reply.status)
            kind = "application/json" if reply.raw is None else "text/html"
            for name, value in {"Content-Type": kind, **reply.headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return Handler


@contextmanager
def serve() -> Iterator[FakeApi]:
    api = FakeApi()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    server.daemon_threads = True
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    for name in ("HELDOUT_URL", "HELDOUT_TOKEN", "HELDOUT_CHUNKED_THRESHOLD",
                 "HELDOUT_CHUNK_SIZE", "HELDOUT_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def fake() -> Iterator[FakeApi]:
    with serve() as api:
        yield api


@pytest.fixture
def logged_in(fake: FakeApi, monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    monkeypatch.setenv("HELDOUT_URL", fake.url)
    monkeypatch.setenv("HELDOUT_TOKEN", TOKEN)
    return fake


@dataclass
class Ran:
    code: int
    out: str
    err: str


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Callable[..., Ran]:
    def _run(*argv: str) -> Ran:
        code = cli.main(list(argv))
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    return _run


def submission(status: str = "queued", **extra: Any) -> dict[str, Any]:
    return {"id": SUB_ID, "number": 3, "challenge": "readmission", "phase": "leaderboard",
            "team": "Alpha", "kind": "bundle", "filename": "model.zip", "size": 2048,
            "status": status, "error_class": "", "error_message": "", "selected": False,
            "created_at": "2026-03-01T12:00:00Z", "finished_at": None,
            "scores_visible": True, "metrics": None, **extra}


def no_sleep(seconds: float) -> None:
    pass


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- config --------------------------------------------------------------------------------


def test_it_stores_url_and_token_readable_by_the_owner_only(clean_env: Path) -> None:
    folder = clean_env / "heldout"
    folder.mkdir(parents=True, mode=0o755)
    os.chmod(folder, 0o755)
    previous = os.umask(0)  # the most permissive umask must not leak into the files
    try:
        path = config.save(url="https://heldout.example.org", token=TOKEN)
    finally:
        os.umask(previous)
    assert path == folder / "config.json"
    assert (mode(folder), mode(path)) == (0o700, 0o600)
    assert json.loads(path.read_text()) == {"url": "https://heldout.example.org", "token": TOKEN}
    assert [p.name for p in folder.iterdir()] == ["config.json"]  # no temporary left over


def test_it_logs_in_and_stores_the_token_for_the_owner_only(
    fake: FakeApi, run: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch, clean_env: Path
) -> None:
    fake.on("POST", "auth/token/", Reply(201, {"key": TOKEN, "name": "CLI", "prefix": "hld_un"}))
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret pass\n"))
    ran = run("login", "--url", fake.url + "/", "--username", "alice", "--password-stdin")
    assert ran.code == 0, ran.err
    [request] = fake.to("POST", "auth/token/")
    assert request.json()["username"] == "alice"
    assert request.json()["password"] == "s3cret pass"
    assert request.json()["name"].startswith("heldout CLI on ")
    stored = clean_env / "heldout" / "config.json"
    assert json.loads(stored.read_text()) == {"url": fake.url, "token": TOKEN}
    assert (mode(stored.parent), mode(stored)) == (0o700, 0o600)
    assert TOKEN not in ran.out + ran.err


def test_it_asks_for_what_login_was_not_given(
    fake: FakeApi, run: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.on("POST", "auth/token/", Reply(201, {"key": TOKEN}))
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{fake.url}\nbob\npw\n"))
    ran = run("login")
    assert ran.code == 0, ran.err
    assert "Server URL [http://127.0.0.1:8000]: " in ran.err and "Username: " in ran.err
    assert fake.to("POST", "auth/token/")[0].json()["username"] == "bob"


def test_it_reports_wrong_credentials_as_such(
    fake: FakeApi, run: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch, clean_env: Path
) -> None:
    fake.on("POST", "auth/token/", Reply(400, {"code": "invalid_credentials",
                                               "detail": "Unknown username or wrong password."}))
    monkeypatch.setattr("sys.stdin", io.StringIO("nope\n"))
    ran = run("login", "--url", fake.url, "--username", "alice")
    assert (ran.code, ran.err) == (
        2, "heldout: invalid_credentials: Unknown username or wrong password.\n")
    assert not (clean_env / "heldout" / "config.json").exists()


def test_it_prefers_the_environment_to_the_stored_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config.save(url="https://stored.example.org", token="stored-token")
    assert config.load() == config.Config("https://stored.example.org", "stored-token",
                                          config.config_path())
    monkeypatch.setenv("HELDOUT_URL", "https://env.example.org")
    monkeypatch.setenv("HELDOUT_TOKEN", "env-token")
    loaded = config.load()
    assert (loaded.url, loaded.token) == ("https://env.example.org", "env-token")
    assert config.load(url_override="http://localhost:9000").url == "http://localhost:9000"


def test_it_uses_dot_config_without_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert config.config_path() == tmp_path / "home" / ".config" / "heldout" / "config.json"
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/path")  # invalid per the XDG spec
    assert config.config_path() == tmp_path / "home" / ".config" / "heldout" / "config.json"


@pytest.mark.parametrize(("given", "expected"), [
    ("heldout.example.org", "https://heldout.example.org"),
    ("https://heldout.example.org/", "https://heldout.example.org"),
    ("127.0.0.1:8000", "http://127.0.0.1:8000"),
    ("localhost:8000/", "http://localhost:8000"),
    ("http://10.0.0.5:8000", "http://10.0.0.5:8000"),
])
def test_it_normalises_server_urls(given: str, expected: str) -> None:
    assert config.normalise_url(given) == expected


def test_it_refuses_other_url_schemes() -> None:
    with pytest.raises(config.ConfigError):
        config.normalise_url("ftp://example.org")


def test_it_asks_to_log_in_first(run: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELDOUT_URL", "http://127.0.0.1:1")
    ran = run("quota", "readmission", "leaderboard")
    assert (ran.code, ran.err) == (
        2, "heldout: not logged in; run heldout login (or set HELDOUT_TOKEN)\n")


def test_it_logs_out_by_revoking_then_forgetting_the_token(
    fake: FakeApi, run: Callable[..., Ran]
) -> None:
    config.save(url=fake.url, token=TOKEN)
    fake.on("DELETE", "auth/token/", Reply(204))
    ran = run("logout")
    assert ran.code == 0, ran.err
    assert fake.to("DELETE", "auth/token/")[0].headers["Authorization"] == f"Token {TOKEN}"
    assert json.loads(config.config_path().read_text()) == {"url": fake.url}
    assert mode(config.config_path()) == 0o600


# --- kind detection ------------------------------------------------------------------------


def _zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("predict.py", "print('hi')\n")
    return path


def _tar(path: Path, gz: bool = False) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("manifest.json")
        info.size = 2
        archive.addfile(info, io.BytesIO(b"[]"))
    path.write_bytes(gzip.compress(buffer.getvalue()) if gz else buffer.getvalue())
    return path


@pytest.mark.parametrize(("make", "kind"), [
    (lambda d: _zip(d / "model.zip"), "bundle"),
    (lambda d: _zip(d / "model.csv"), "bundle"),  # the bytes win over the name
    (lambda d: _tar(d / "image.tar"), "image"),
    (lambda d: _tar(d / "image.tar.gz", gz=True), "image"),
    (lambda d: _tar(d / "image", gz=True), "image"),
    (lambda d: (d / "preds.csv").write_text("id,score\nc1,0.5\n") and d / "preds.csv",
     "predictions"),
    (lambda d: (d / "preds.txt").write_text("id,score,label\nc1,0.5,1\n") and d / "preds.txt",
     "predictions"),
    (lambda d: (d / "weights.bin").write_bytes(bytes(range(256)) * 4) and d / "weights.bin",
     None),
])
def test_it_detects_the_kind_from_the_file(
    tmp_path: Path, make: Callable[[Path], Path], kind: str | None
) -> None:
    assert upload.detect_kind(make(tmp_path)) == kind


def test_it_asks_for_the_kind_when_it_cannot_tell(
    logged_in: FakeApi, run: Callable[..., Ran], tmp_path: Path
) -> None:
    blob = tmp_path / "weights.bin"
    blob.write_bytes(bytes(range(256)))
    ran = run("submit", "readmission", "leaderboard", str(blob))
    assert ran.code == 2
    assert ran.err == ("heldout: cannot tell the kind of weights.bin; pass --kind "
                       "bundle|image|predictions\n")
    assert logged_in.seen == []


# --- tables and JSON -----------------------------------------------------------------------


def test_it_aligns_columns_and_right_aligns_numbers() -> None:
    table = output.render_table(["TEAM", "AUROC", "N"], [["Alpha", 0.71234, 3],
                                                        ["Bravo team", 0.6, 12]])
    assert table.splitlines() == [
        "TEAM          AUROC    N",
        "─" * 24,
        "Alpha        0.7123    3",
        "Bravo team   0.6000   12",
    ]


def test_it_shows_missing_values_as_dashes_on_one_line() -> None:
    table = output.render_table(["A", "B", "C"], [[None, "two\nlines", ["x", "y"]],
                                                 ["", True, []]])
    assert table.splitlines()[2:] == ["-   two lines   x, y", "-   yes         -"]


def test_it_never_wraps_a_row_and_reads_no_markup() -> None:
    wide = "x" * 300
    table = output.render_table(["TEAM", "NOTE"], [["[bold]Alpha[/bold]", wide]])
    assert table.splitlines()[2] == f"[bold]Alpha[/bold]   {wide}"


def test_it_leaves_out_unknown_fields() -> None:
    assert output.render_fields([("status", "queued"), ("error", None), ("n", 3)]) == (
        "status: queued\nn:      3")


def _board(**extra: Any) -> dict[str, Any]:
    def entry(rank: int, team: str, auroc: float, tied: bool) -> dict[str, Any]:
        return {"rank": rank, "team": team, "is_baseline": team == "Organisers",
                "metrics": {"auroc": auroc, "auprc": auroc - 0.4},
                "intervals": {"auroc": [auroc - 0.02, auroc + 0.02]},
                "tied_with_leader": tied, "entries": 2}

    return {"board": "public", "visible": True, "reason": "", "primary": "auroc",
            "secondary": ["auprc"], "n_cases": 3000, "n_resamples": 1000,
            "entries": [entry(1, "Alpha", 0.7, True), entry(2, "Bravo", 0.69, True),
                        entry(3, "Organisers", 0.6, False)], **extra}


def test_it_marks_statistical_ties_with_the_leader() -> None:
    lines = output.leaderboard_text(_board()).splitlines()
    assert lines[0].split() == ["RANK", "TEAM", "AUROC", "[95%", "CI]", "AUPRC", "ENTRIES"]
    assert lines[2].split() == ["1", "Alpha", "0.7000", "[0.680,", "0.720]", "0.3000", "2"]
    assert lines[3].split()[:3] == ["2", "=", "Bravo"]
    assert "Organisers (baseline)" in lines[4]
    assert "public board, 3000 cases, 1000 bootstrap resamples" in lines[-1]


def test_it_explains_a_hidden_board() -> None:
    board = _board(visible=False, entries=[],
                   reason="The private leaderboard appears when the phase closes.")
    assert output.leaderboard_text(board) == (
        "The private leaderboard appears when the phase closes.")


def test_it_prints_tables_by_default_and_json_on_request(
    logged_in: FakeApi, run: Callable[..., Ran]
) -> None:
    page2 = f"{logged_in.url}/api/v1/challenges/?page=2"
    first = {"slug": "readmission", "title": "Readmission", "task": "binary",
             "phases": [{"slug": "leaderboard", "is_open": True}]}
    second = {"slug": "mammo", "title": "Mammography", "task": "binary", "phases": []}

    def pages(seen: Seen) -> Reply:
        if seen.query.get("page") == "2":
            return Reply(200, {"count": 2, "next": None, "results": [second]})
        return Reply(200, {"count": 2, "next": page2, "results": [first]})

    logged_in.on("GET", "challenges/", pages)
    table = run("challenges")
    assert table.code == 0
    assert table.out.splitlines()[2].split() == ["readmission", "Readmission", "binary",
                                                 "leaderboard"]
    assert table.out.splitlines()[3].split() == ["mammo", "Mammography", "binary", "-"]
    as_json = run("--json", "challenges")
    assert json.loads(as_json.out) == [first, second]
    assert json.loads(run("challenges", "--json").out) == [first, second]
    assert as_json.err == ""


# --- errors --------------------------------------------------------------------------------


QUOTA = ("Your team has used all 5 submissions for today; the quota resets at 00:00 UTC.")


def test_it_turns_an_api_error_into_one_line(
    logged_in: FakeApi, run: Callable[..., Ran]
) -> None:
    logged_in.on("GET", "challenges/readmission/phases/leaderboard/quota/",
                 Reply(429, {"code": "quota_exceeded", "detail": QUOTA}))
    ran = run("quota", "readmission", "leaderboard")
    assert (ran.code, ran.out, ran.err) == (2, "", f"heldout: quota_exceeded: {QUOTA}\n")
    assert len(logged_in.seen) == 1  # a used-up quota is not retried like a throttle


def test_it_tells_a_refused_token_to_log_in_again(
    logged_in: FakeApi, run: Callable[..., Ran]
) -> None:
    logged_in.on("GET", f"submissions/{SUB_ID}/", Reply(
        401, {"code": "authentication_failed", "detail": "Invalid or revoked token."},
        headers={"WWW-Authenticate": 'Token realm="api"'}))
    ran = run("status", SUB_ID)
    assert (ran.code, ran.err) == (2, "heldout: the token was refused; run heldout login\n")
    assert logged_in.seen[0].headers["Authorization"] == f"Token {TOKEN}"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_it_reports_a_server_that_is_down(
    run: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _closed_port()
    monkeypatch.setenv("HELDOUT_TOKEN", TOKEN)
    ran = run("--url", f"http://127.0.0.1:{port}", "challenges")
    assert (ran.code, ran.err) == (
        2, f"heldout: cannot reach http://127.0.0.1:{port}: connection refused\n")


def test_it_reports_an_html_error_page(logged_in: FakeApi, run: Callable[..., Ran]) -> None:
    logged_in.on("GET", "challenges/", Reply(502, raw=b"<html>Bad Gateway</html>"))
    ran = run("challenges")
    assert ran.err == "heldout: http_502: /api/v1/challenges/ answered 502 Bad Gateway\n"


def test_it_notices_a_server_that_is_not_heldout(
    logged_in: FakeApi, run: Callable[..., Ran]
) -> None:
    logged_in.on("GET", "challenges/", Reply(200, raw=b"<html>Welcome to nginx</html>"))
    ran = run("challenges")
    assert ran.err == (f"heldout: bad_response: {logged_in.url} did not answer with JSON; "
                       "is it a Heldout server?\n")


def test_it_flattens_validation_errors(fake: FakeApi) -> None:
    client = ApiClient(fake.url, TOKEN)
    fake.on("POST", "challenges/x/teams/", [
        Reply(400, {"code": "invalid_input", "detail": "name: This field is required.",
                    "errors": {"name": ["This field is required."]}}),
        Reply(400, {"name": ["This field is required."], "non_field_errors": ["Bad."]}),
    ])
    with pytest.raises(ApiError) as first:
        client.team_create("x", "")
    assert (first.value.code, first.value.detail, first.value.status) == (
        "invalid_input", "name: This field is required.", 400)
    with pytest.raises(ApiError) as second:
        client.team_create("x", "")
    assert (second.value.code, second.value.detail) == (
        "invalid", "name: This field is required.; Bad.")


def test_it_waits_out_a_short_throttle(fake: FakeApi) -> None:
    waited: list[float] = []
    fake.on("GET", "challenges/", [
        Reply(429, {"code": "throttled", "detail": "Slow down."}, headers={"Retry-After": "2"}),
        Reply(200, []),
    ])
    assert ApiClient(fake.url, TOKEN, sleep=waited.append).challenges() == []
    assert waited == [2.0]


def test_it_keeps_a_bug_of_its_own_to_one_line(
    logged_in: FakeApi, run: Callable[..., Ran]
) -> None:
    logged_in.on("GET", f"submissions/{SUB_ID}/", Reply(200, ["not", "an", "object"]))
    ran = run("status", SUB_ID)
    assert ran.code == 2
    assert ran.err.startswith("heldout: unexpected error (AttributeError")
    assert ran.err.count("\n") == 1 and "Traceback" not in ran.err


def test_it_refuses_a_malformed_submission_id(
    logged_in: FakeApi, run: Callable[..., Ran]
) -> None:
    ran = run("status", "../../admin")
    assert ran.code == 2 and ran.err.startswith("heldout: not a submission id: '../../admin'")
    assert logged_in.seen == []


def test_it_exits_2_on_usage_errors(run: Callable[..., Ran]) -> None:
    ran = run("leaderboard", "readmission")
    assert ran.code == 2 and "Usage: heldout leaderboard" in ran.err
    assert "Missing argument 'PHASE'" in ran.err


# --- submitting ----------------------------------------------------------------------------


def _multipart(seen: Seen) -> dict[str, tuple[str | None, bytes]]:
    head = f"Content-Type: {seen.headers['Content-Type']}\r\n\r\n".encode()
    message = email.parser.BytesParser().parsebytes(head + seen.body)
    return {part.get_param("name", header="content-disposition"):
            (part.get_filename(), part.get_payload(decode=True))
            for part in message.get_payload()}


def test_it_streams_a_small_file_as_multipart_with_an_idempotency_key(
    logged_in: FakeApi, run: Callable[..., Ran], tmp_path: Path
) -> None:
    model = _zip(tmp_path / "model.zip")
    logged_in.on("POST", "challenges/readmission/phases/leaderboard/submissions/",
                 Reply(201, submission()))
    ran = run("submit", "readmission", "leaderboard", str(model))
    assert (ran.code, ran.out) == (0, f"{SUB_ID}\n")
    assert f"as #3 of team Alpha; follow it with: heldout status {SUB_ID} --wait" in ran.err
    [request] = logged_in.seen
    assert uuid.UUID(request.headers["Idempotency-Key"]).version == 4
    assert int(request.headers["Content-Length"]) == len(request.body)
    assert _multipart(request) == {"kind": (None, b"bundle"),
                                   "file": ("model.zip", model.read_bytes())}
    assert json.loads(upload._pending_path().read_text()) == {}


def test_it_prints_clean_json_for_scripts(
    logged_in: FakeApi, run: Callable[..., Ran], tmp_path: Path
) -> None:
    logged_in.on("POST", "challenges/readmission/phases/leaderboard/submissions/",
                 Reply(201, submission()))
    ran = run("submit", "readmission", "leaderboard", str(_zip(tmp_path / "m.zip")), "--json")
    assert json.loads(ran.out) == submission()


def test_it_resends_with_the_same_key_after_a_dropped_connection(
    fake: FakeApi, tmp_path: Path
) -> None:
    fake.on("POST", "challenges/c/phases/p/submissions/", [
        Reply(drop=True), Reply(503, {"code": "unavailable", "detail": "Restarting."}),
        Reply(201, submission()),
    ])
    model, waited = _zip(tmp_path / "m.zip"), []
    made = upload.submit_file(ApiClient(fake.url, TOKEN), slug="c", phase="p",
                              path=model, kind="bundle", sleep=waited.append)
    assert made["id"] == SUB_ID
    keys = {seen.headers["Idempotency-Key"] for seen in fake.seen}
    assert len(fake.seen) == 3 and len(keys) == 1
    assert waited == [1.0, 2.0]  # backing off between tries
    # Each try sends the whole file again from its start.
    assert {_multipart(seen)["file"][1] for seen in fake.seen[1:]} == {model.read_bytes()}


def test_it_forgets_the_key_after_a_refusal(fake: FakeApi, tmp_path: Path) -> None:
    fake.on("POST", "challenges/c/phases/p/submissions/", [
        Reply(400, {"code": "invalid_upload", "detail": "No predict.py at the root."}),
        Reply(201, submission()),
    ])
    client, model = ApiClient(fake.url, TOKEN), _zip(tmp_path / "m.zip")
    with pytest.raises(ApiError, match="invalid_upload"):
        upload.submit_file(client, slug="c", phase="p", path=model, kind="bundle")
    upload.submit_file(client, slug="c", phase="p", path=model, kind="bundle")
    first, second = (seen.headers["Idempotency-Key"] for seen in fake.seen)
    assert first != second  # a refused attempt created nothing, so a new one is new


class ChunkServer:
    """The resumable protocol of /api/v1/uploads/, with a connection that can drop
    mid-chunk after the server has kept only part of it."""

    def __init__(self, api: FakeApi, drop_puts: tuple[int, ...] = ()) -> None:
        self.data, self.size, self.puts = bytearray(), 0, 0
        self.drop_puts = drop_puts
        self.finish_replies: list[Reply] = []
        api.on("POST", "challenges/c/phases/p/uploads/", self.start)
        api.on("GET", "uploads/u-1/", lambda seen: Reply(200, self.state()))
        api.on("PUT", "uploads/u-1/", self.put)
        api.on("POST", "uploads/u-1/finish/", self.finish)

    def state(self) -> dict[str, Any]:
        return {"id": "u-1", "size": self.size, "received": len(self.data), "submission": None}

    def start(self, seen: Seen) -> Reply:
        self.size = seen.json()["size"]
        return Reply(201, self.state())

    def put(self, seen: Seen) -> Reply:
        self.puts += 1
        if int(seen.query["offset"]) != len(self.data):
            return Reply(409, {"code": "invalid_upload", "detail": "Wrong offset.",
                               "received": len(self.data), "size": self.size})
        if self.puts in self.drop_puts:
            self.data += seen.body[: len(seen.body) // 2]
            return Reply(drop=True)
        self.data += seen.body
        return Reply(200, self.state())

    def finish(self, seen: Seen) -> Reply:
        if self.finish_replies:
            return self.finish_replies.pop(0)
        assert len(self.data) == self.size
        return Reply(201, submission())


def test_it_resumes_a_chunked_upload_from_the_servers_offset(
    fake: FakeApi, tmp_path: Path
) -> None:
    server = ChunkServer(fake, drop_puts=(2,))
    blob = tmp_path / "image.tar"
    blob.write_bytes(os.urandom(2500))
    progress: list[int] = []
    made = upload.submit_file(ApiClient(fake.url, TOKEN), slug="c", phase="p", path=blob,
                              kind="image", on_progress=progress.append, sleep=no_sleep,
                              threshold=1000, chunk_size=1000)
    assert made["id"] == SUB_ID
    assert bytes(server.data) == blob.read_bytes()
    # 0-1000 arrives; 1000-2000 drops after the server kept 500 bytes; resume at 1500.
    assert [s.query["offset"] for s in fake.to("PUT", "uploads/u-1/")] == ["0", "1000", "1500"]
    assert len(fake.to("GET", "uploads/u-1/")) == 1  # asked where to resume
    assert progress[-1] == 2500
    [finish] = fake.to("POST", "uploads/u-1/finish/")
    assert uuid.UUID(finish.headers["Idempotency-Key"])
    assert fake.to("POST", "challenges/c/phases/p/uploads/")[0].json() == {
        "kind": "image", "filename": "image.tar", "size": 2500}


def test_it_goes_on_from_the_offset_a_conflict_reports(fake: FakeApi, tmp_path: Path) -> None:
    server = ChunkServer(fake)
    blob = tmp_path / "image.tar"
    blob.write_bytes(os.urandom(1800))

    def started_elsewhere(seen: Seen) -> Reply:  # e.g. a second terminal got there first
        reply = server.start(seen)
        server.data += blob.read_bytes()[:700]
        return reply

    fake.on("POST", "challenges/c/phases/p/uploads/", started_elsewhere)
    upload.submit_file(ApiClient(fake.url, TOKEN), slug="c", phase="p", path=blob,
                       kind="image", sleep=no_sleep, threshold=100, chunk_size=1000)
    assert [s.query["offset"] for s in fake.to("PUT", "uploads/u-1/")] == ["0", "700", "1700"]
    assert bytes(server.data) == blob.read_bytes()


def test_it_resumes_the_same_upload_when_run_again(
    logged_in: FakeApi, run: Callable[..., Ran], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upload, "MAX_RETRIES", 0)
    monkeypatch.setenv("HELDOUT_CHUNKED_THRESHOLD", "100")
    monkeypatch.setenv("HELDOUT_CHUNK_SIZE", "400")
    server = ChunkServer(logged_in)
    server.finish_replies = [Reply(drop=True)]  # the first run dies on its last request
    blob = tmp_path / "image.tar"
    blob.write_bytes(os.urandom(1000))
    first = run("submit", "c", "p", str(blob), "--kind", "image")
    assert first.code == 2
    assert first.err.startswith(f"heldout: cannot reach {logged_in.url}: ")
    assert first.err.count("\n") == 1
    second = run("submit", "c", "p", str(blob), "--kind", "image")
    assert (second.code, second.out) == (0, f"{SUB_ID}\n")
    assert len(logged_in.to("POST", "challenges/c/phases/p/uploads/")) == 1
    assert len(logged_in.to("PUT", "uploads/u-1/")) == 3  # no byte was sent twice
    keys = {s.headers["Idempotency-Key"] for s in logged_in.to("POST", "uploads/u-1/finish/")}
    assert len(keys) == 1
    assert json.loads(upload._pending_path().read_text()) == {}


def test_it_resumes_after_ctrl_c(
    logged_in: FakeApi, run: Callable[..., Ran], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HELDOUT_CHUNKED_THRESHOLD", "100")
    monkeypatch.setenv("HELDOUT_CHUNK_SIZE", "400")
    server = ChunkServer(logged_in)
    blob = tmp_path / "image.tar"
    blob.write_bytes(os.urandom(1000))
    with mock.patch.object(upload.ChunkedUpload, "_finish", autospec=True,
                           side_effect=KeyboardInterrupt):
        stopped = run("submit", "c", "p", str(blob), "--kind", "image")
    assert (stopped.code, stopped.out, stopped.err) == (130, "", "heldout: interrupted\n")
    again = run("submit", "c", "p", str(blob), "--kind", "image")
    assert (again.code, again.out) == (0, f"{SUB_ID}\n")
    assert len(logged_in.to("POST", "challenges/c/phases/p/uploads/")) == 1
    assert len(logged_in.to("PUT", "uploads/u-1/")) == 3  # the second run sent nothing again
    assert bytes(server.data) == blob.read_bytes()


# --- waiting -------------------------------------------------------------------------------


@pytest.fixture
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "POLL_S", (0.001,))


@pytest.mark.parametrize(("final", "code"), [("succeeded", 0), ("failed", 1), ("cancelled", 1)])
def test_it_waits_for_a_final_state_and_exits_by_outcome(
    logged_in: FakeApi, run: Callable[..., Ran], quick_polls: None, final: str, code: int
) -> None:
    metrics = {"public": {"auroc": 0.71, "auprc": 0.2}} if final == "succeeded" else None
    error = {"error_class": "nonzero_exit", "error_message": "exit 3"} if final == "failed" else {}
    logged_in.on("GET", f"submissions/{SUB_ID}/", [
        Reply(200, submission("queued")), Reply(200, submission("running")),
        Reply(200, submission(final, metrics=metrics, **error)),
    ])
    ran = run("status", SUB_ID, "--wait")
    assert ran.code == code, ran.err
    assert f"status:     {final}" in ran.out
    assert len(logged_in.seen) == 3
    if final == "succeeded":
        assert ran.out.splitlines()[-1].split() == ["public", "0.7100", "0.2000"]
    if final == "failed":
        assert "error:      nonzero_exit: exit 3" in ran.out


def test_it_exits_3_while_a_submission_is_not_final(
    logged_in: FakeApi, run: Callable[..., Ran]
) -> None:
    logged_in.on("GET", f"submissions/{SUB_ID}/", Reply(200, submission("running")))
    assert run("status", SUB_ID).code == 3


def test_it_keeps_waiting_through_a_brief_outage(
    logged_in: FakeApi, run: Callable[..., Ran], quick_polls: None
) -> None:
    logged_in.on("GET", f"submissions/{SUB_ID}/", [
        Reply(200, submission("running")), Reply(drop=True),
        Reply(200, submission("succeeded")),
    ])
    ran = run("status", SUB_ID, "--wait", "--json")
    assert ran.code == 0
    assert json.loads(ran.out)["status"] == "succeeded"


def test_it_gives_up_waiting_after_the_timeout(
    logged_in: FakeApi, run: Callable[..., Ran], quick_polls: None
) -> None:
    logged_in.on("GET", f"submissions/{SUB_ID}/", Reply(200, submission("running")))
    ran = run("status", SUB_ID, "--wait", "--timeout", "0")
    assert ran.code == 3
    assert ran.err == (f"heldout: still running after 0 s; wait again with: "
                       f"heldout status {SUB_ID} --wait\n")


# --- progress ------------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_it_draws_progress_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")  # as CI sets it: still no bars in a log
    piped, terminal = io.StringIO(), Terminal()
    for stream in (piped, terminal):
        with output.progress("model.zip", 2048, stream=stream) as update:
            update(1024)
            update(2048)
        with output.spinner(stream=stream) as show:
            show("running")
    assert piped.getvalue() == ""
    drawn = terminal.getvalue()
    assert "model.zip" in drawn and "100%" in drawn and "2.0/2.0 kB" in drawn
    assert "running" in drawn and "0:00:00" in drawn


def test_it_reports_upload_progress_on_a_terminal_only(
    logged_in: FakeApi, run: Callable[..., Ran], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logged_in.on("POST", "challenges/readmission/phases/leaderboard/submissions/",
                 Reply(201, submission()))
    model = _zip(tmp_path / "model.zip")
    piped = run("submit", "readmission", "leaderboard", str(model))
    assert piped.err.count("\n") == 1 and "\x1b" not in piped.err  # only the "Submitted" line
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert cli.main(["submit", "readmission", "leaderboard", str(model)]) == 0
    assert "model.zip (bundle)" in terminal.getvalue() and "100%" in terminal.getvalue()


# --- downloads -----------------------------------------------------------------------------


def test_it_downloads_public_files_and_checks_them(
    logged_in: FakeApi, run: Callable[..., Ran], tmp_path: Path
) -> None:
    import hashlib

    content = b"id,age,label\nc001,70,1\n"
    # As a server behind a proxy may build it: the CLI keeps to its own origin (and the
    # token never goes to another host).
    url = "http://internal-web-1:8000/api/v1/challenges/readmission/files/public/train.csv"
    logged_in.on("GET", "challenges/readmission/files/", Reply(200, [
        {"name": "public/train.csv", "size": len(content),
         "sha256": hashlib.sha256(content).hexdigest(), "download_url": url}]))
    logged_in.on("GET", "challenges/readmission/files/public/train.csv", Reply(200, raw=content))
    ran = run("download", "readmission", "--dest", str(tmp_path / "data"))
    assert ran.code == 0, ran.err
    assert (tmp_path / "data" / "public" / "train.csv").read_bytes() == content
    again = run("download", "readmission", "--dest", str(tmp_path / "data"), "--json")
    assert json.loads(again.out)[0]["status"] == "up to date"
    [fetched] = logged_in.to("GET", "challenges/readmission/files/public/train.csv")
    assert fetched.headers["Authorization"] == f"Token {TOKEN}"


def test_it_refuses_file_names_that_leave_the_folder(
    logged_in: FakeApi, run: Callable[..., Ran], tmp_path: Path
) -> None:
    logged_in.on("GET", "challenges/readmission/files/", Reply(200, [
        {"name": "../../.bashrc", "size": 1, "sha256": "", "download_url": "x"}]))
    ran = run("download", "readmission", "--dest", str(tmp_path / "data"))
    assert ran.code == 2
    assert ran.err == "heldout: bad_response: refusing to write the file name '../../.bashrc'\n"
