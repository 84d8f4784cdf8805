"""`heldout`: take part in Heldout challenges from a terminal or a script.

Exit codes: 0 success (for `status`/`submit --wait`: the submission succeeded); 1 the
submission failed or was cancelled; 2 usage, network, server or authentication errors;
3 the submission is not finished yet (`status` without `--wait`, or `--timeout` passed);
130 interrupted. Errors are one line on stderr; `HELDOUT_DEBUG=1` adds the traceback.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import os
import socket
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from client import __version__, config, output, upload
from client.api import NETWORK, ApiClient, ApiError

EXIT_OK, EXIT_FAILED, EXIT_ERROR, EXIT_PENDING, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
FINAL = {"succeeded": EXIT_OK, "failed": EXIT_FAILED, "cancelled": EXIT_FAILED}
LOGIN_ERRORS = ("invalid_credentials", "email_not_verified")
POLL_S = (1.0, 2.0, 3.0, 5.0)  # seconds between looks: quick at first, then gentler
SPIN_S = 0.1
MAX_WAIT_NETWORK_ERRORS = 10


class UsageError(Exception):
    """A problem with what the user typed or has set up; the message says what to do."""


@dataclass
class Context:
    args: argparse.Namespace

    @property
    def json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    def client(self, *, anonymous: bool = False) -> ApiClient:
        settings = config.load(url_override=getattr(self.args, "url", None))
        if not settings.url:
            raise UsageError("no server configured; run heldout login (or set HELDOUT_URL)")
        if not settings.token and not anonymous:
            raise UsageError("not logged in; run heldout login (or set HELDOUT_TOKEN)")
        return ApiClient(settings.url, settings.token)

    def emit(self, data: Any, text: str) -> None:
        if self.json:
            output.dump_json(data)
        else:
            print(text)


def say(message: str) -> None:
    """Context for people, on stderr, so stdout keeps only what scripts parse."""
    print(message, file=sys.stderr)


# --- login -------------------------------------------------------------------------------


def _ask(prompt: str, default: str | None = None) -> str:
    shown = f"{prompt} [{default}]: " if default else f"{prompt}: "
    sys.stderr.write(shown)
    sys.stderr.flush()
    answer = sys.stdin.readline()
    if not answer:
        raise UsageError(f"no {prompt.lower()} given")
    return answer.strip() or (default or "")


def _password(args: argparse.Namespace) -> str:
    if args.password is not None:
        return str(args.password)
    if args.password_stdin or not sys.stdin.isatty():
        line = sys.stdin.readline()
        if not line:
            raise UsageError("no password on standard input")
        return line.rstrip("\r\n")
    return getpass.getpass("Password: ")


def cmd_login(ctx: Context) -> int:
    args = ctx.args
    try:
        known = config.load().url
    except config.ConfigError:  # a damaged file is simply rewritten by this login
        known = None
    given = getattr(args, "url", None)
    url = config.normalise_url(given or _ask("Server URL", known or config.DEFAULT_URL))
    username = args.username or _ask("Username")
    password = _password(args)
    if not username or not password:
        raise UsageError("a username and a password are needed")
    client = ApiClient(url)
    key = client.obtain_token(username=username, password=password,
                              name=f"heldout CLI on {socket.gethostname()}"[:100])
    path = config.save(url=url, token=key)
    if os.environ.get("HELDOUT_TOKEN"):
        say("note: HELDOUT_TOKEN is set and overrides the stored token")
    ctx.emit({"url": url, "username": username, "config": str(path)},
             f"Logged in to {url} as {username}; the token is stored in {path}")
    return EXIT_OK


def _revoke(settings: config.Config) -> bool:
    """Revoke the stored token on the server; an unreachable server does not stop logout."""
    if not (settings.url and settings.token):
        return False
    try:
        ApiClient(settings.url, settings.token).revoke_token()
    except ApiError as error:
        if error.status != 401:  # 401: already revoked, which is what we wanted
            say(f"heldout: could not revoke the token on the server ({error_line(error)})")
        return False
    return True


def cmd_logout(ctx: Context) -> int:
    """Revoke the stored token on the server, then forget it here."""
    stored = config.load(url_override=getattr(ctx.args, "url", None))
    if os.environ.get("HELDOUT_TOKEN"):
        raise UsageError("HELDOUT_TOKEN is set; unset it (and revoke it on your profile page)")
    revoked = _revoke(stored)
    path = config.forget_token()
    text = (f"Logged out{' (token revoked)' if revoked else ''}; removed the token from {path}"
            if path else "No stored token.")
    ctx.emit({"config": str(path) if path else None, "revoked": revoked}, text)
    return EXIT_OK


# --- challenges, terms, files --------------------------------------------------------------


def cmd_challenges(ctx: Context) -> int:
    items = ctx.client(anonymous=True).challenges()
    ctx.emit(items, output.challenges_table(items) if items else "No challenges.")
    return EXIT_OK


def cmd_phases(ctx: Context) -> int:
    challenge = ctx.client(anonymous=True).challenge(ctx.args.slug)
    ctx.emit(challenge, output.phases_table(challenge))
    return EXIT_OK


def cmd_terms_show(ctx: Context) -> int:
    challenge = ctx.client(anonymous=True).challenge(ctx.args.slug)
    data = {"slug": challenge.get("slug"), "terms": challenge.get("terms"),
            "terms_version": challenge.get("terms_version")}
    ctx.emit(data, (challenge.get("terms") or "This challenge has no terms.").rstrip())
    return EXIT_OK


def cmd_terms_accept(ctx: Context) -> int:
    acceptance = ctx.client().accept_terms(ctx.args.slug)
    ctx.emit(acceptance, f"Accepted version {acceptance.get('version')} of the data-use terms "
                         f"of {ctx.args.slug}.")
    return EXIT_OK


def _safe_target(dest: Path, name: str) -> Path:
    """`dest/name`, refusing names that would land outside `dest`."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if not parts or parts[0] == "/" or any(p in ("..", "") for p in parts):
        raise ApiError("bad_response", f"refusing to write the file name {name!r}")
    return dest.joinpath(*parts)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def _download_one(client: ApiClient, item: dict[str, Any], dest: Path) -> dict[str, Any]:
    target = _safe_target(dest, str(item["name"]))
    expected = item.get("sha256")
    if target.is_file() and expected and _sha256(target) == expected:
        return {"name": item["name"], "path": str(target), "status": "up to date"}
    target.parent.mkdir(parents=True, exist_ok=True)
    bar = output.Progress(str(item["name"]), item.get("size"))
    try:
        client.download(item["download_url"], target, bar.update)
    finally:
        bar.close()
    if expected and _sha256(target) != expected:
        target.unlink(missing_ok=True)
        raise ApiError("checksum_mismatch", f"{item['name']} arrived corrupted; run it again")
    return {"name": item["name"], "path": str(target), "status": "downloaded"}


def cmd_download(ctx: Context) -> int:
    client = ctx.client()
    items = client.files(ctx.args.slug)
    dest = Path(ctx.args.dest)
    done = [_download_one(client, item, dest) for item in items]
    table = output.render_table(["FILE", "STATUS", "PATH"],
                                [[d["name"], d["status"], d["path"]] for d in done])
    ctx.emit(done, table if done else "This challenge has no public files.")
    return EXIT_OK


# --- teams -------------------------------------------------------------------------------


def cmd_team_create(ctx: Context) -> int:
    team = ctx.client().team_create(ctx.args.slug, ctx.args.name)
    ctx.emit(team, output.team_text(team))
    return EXIT_OK


def cmd_team_show(ctx: Context) -> int:
    team = ctx.client().team_mine(ctx.args.slug)
    ctx.emit(team, output.team_text(team))
    return EXIT_OK


def cmd_team_invite(ctx: Context) -> int:
    invitation = ctx.client().team_invite(ctx.args.slug, ctx.args.email or "")
    who = f" for {invitation['email']}" if invitation.get("email") else ""
    until = output.when(invitation.get("expires_at"))
    ctx.emit(invitation, f"Invitation{who} (valid until {until}):\n{invitation.get('url')}\n"
                         f"or: heldout team accept {invitation.get('token')}")
    return EXIT_OK


def cmd_team_accept(ctx: Context) -> int:
    team = ctx.client().invitation_accept(ctx.args.token)
    ctx.emit(team, output.team_text(team))
    return EXIT_OK


def cmd_team_leave(ctx: Context) -> int:
    ctx.client().team_leave(ctx.args.slug)
    ctx.emit({"left": True}, f"You left your team in {ctx.args.slug}.")
    return EXIT_OK


# --- submissions -------------------------------------------------------------------------


def _kind(args: argparse.Namespace, path: Path) -> str:
    if args.kind:
        return str(args.kind)
    kind = upload.detect_kind(path)
    if kind is None:
        raise UsageError(f"cannot tell the kind of {path.name}; pass --kind "
                         "bundle|image|predictions")
    return kind


def cmd_submit(ctx: Context) -> int:
    args, path = ctx.args, Path(ctx.args.path)
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    kind = _kind(args, path)
    client = ctx.client()
    bar = output.Progress(f"{path.name} ({kind})", path.stat().st_size)
    try:
        submission = upload.submit_file(client, slug=args.slug, phase=args.phase, path=path,
                                        kind=kind, on_progress=bar.update)
    finally:
        bar.close()
    say(f"Submitted {path.name} ({kind}) as #{submission.get('number')} of team "
        f"{submission.get('team')}; follow it with: heldout status {submission['id']} --wait")
    if args.wait:
        return _wait_and_show(ctx, client, str(submission["id"]))
    ctx.emit(submission, str(submission["id"]))
    return EXIT_OK


def _status_exit(submission: dict[str, Any]) -> int:
    return FINAL.get(str(submission.get("status")), EXIT_PENDING)


def _poll(client: ApiClient, submission_id: str, errors: int) -> tuple[dict[str, Any] | None, int]:
    """One look at the submission; a few network blips in a long wait are tolerated."""
    try:
        return client.submission(submission_id), 0
    except ApiError as error:
        if error.code != NETWORK or errors + 1 >= MAX_WAIT_NETWORK_ERRORS:
            raise
        return None, errors + 1


def wait_final(client: ApiClient, submission_id: str, *, timeout: float | None,
               sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Poll until the submission is final (or `timeout` seconds pass); a spinner on a TTY."""
    spinner, start, errors, polls = output.Spinner(), time.monotonic(), 0, 0
    submission: dict[str, Any] = {}
    try:
        while True:
            found, errors = _poll(client, submission_id, errors)
            submission = found or submission
            elapsed = time.monotonic() - start
            if submission and _status_exit(submission) != EXIT_PENDING:
                return submission
            if timeout is not None and elapsed >= timeout and submission:
                return submission
            state = submission.get("status", "unreachable") if found else "server unreachable"
            interval = POLL_S[min(polls, len(POLL_S) - 1)]
            for _ in range(max(1, round(interval / SPIN_S))):  # the spinner turns meanwhile
                spinner.show(f"{state} ({time.monotonic() - start:.0f} s)")
                sleep(SPIN_S)
            polls += 1
    finally:
        spinner.close()


def _wait_and_show(ctx: Context, client: ApiClient, submission_id: str) -> int:
    timeout = getattr(ctx.args, "timeout", None)
    submission = wait_final(client, submission_id, timeout=timeout)
    code = _show_submission(ctx, submission)
    if code == EXIT_PENDING:
        say(f"heldout: still {submission.get('status')} after {timeout:.0f} s; "
            f"wait again with: heldout status {submission_id} --wait")
    return code


def _submission_id(value: str) -> str:
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        raise UsageError(f"not a submission id: {value!r} (ids look like "
                         "1b4e28ba-2fa1-11d2-883f-0016d3cca427)") from None


def _show_submission(ctx: Context, submission: dict[str, Any]) -> int:
    text = output.submission_text(submission)
    if getattr(ctx.args, "logs", False):
        text += "\n\n" + output.runs_text(submission)
    ctx.emit(submission, text)
    return _status_exit(submission)


def cmd_status(ctx: Context) -> int:
    submission_id = _submission_id(ctx.args.id)
    client = ctx.client()
    if ctx.args.wait:
        return _wait_and_show(ctx, client, submission_id)
    return _show_submission(ctx, client.submission(submission_id))


def cmd_cancel(ctx: Context) -> int:
    submission = ctx.client().cancel(_submission_id(ctx.args.id))
    ctx.emit(submission, f"Submission #{submission.get('number')} is {submission.get('status')}.")
    return EXIT_OK


def cmd_submissions(ctx: Context) -> int:
    client = ctx.client()
    items = client.submissions(ctx.args.slug, ctx.args.phase)
    primary = None
    if not ctx.json:
        phases = client.challenge(ctx.args.slug).get("phases", [])
        primary = next((p.get("primary_metric") for p in phases
                        if p.get("slug") == ctx.args.phase), None)
    ctx.emit(items, output.submissions_table(items, primary) if items else "No submissions yet.")
    return EXIT_OK


def cmd_select(ctx: Context) -> int:
    submission = ctx.client().select(_submission_id(ctx.args.id), selected=not ctx.args.unselect)
    verb = "selected as" if submission.get("selected") else "no longer"
    ctx.emit(submission, f"Submission #{submission.get('number')} is {verb} a final entry.")
    return EXIT_OK


def cmd_leaderboard(ctx: Context) -> int:
    client = ctx.client(anonymous=True)
    board = client.leaderboard(ctx.args.slug, ctx.args.phase, ctx.args.board)
    ctx.emit(board, output.leaderboard_text(board))
    return EXIT_OK


def cmd_quota(ctx: Context) -> int:
    quota = ctx.client().quota(ctx.args.slug, ctx.args.phase)
    ctx.emit(quota, output.quota_text(quota))
    return EXIT_OK


# --- the parser --------------------------------------------------------------------------


def _common() -> argparse.ArgumentParser:
    # SUPPRESS keeps a subcommand's default from overwriting `heldout --json <cmd>`.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print JSON for scripts instead of tables")
    common.add_argument("--url", default=argparse.SUPPRESS,
                        help="server URL (default: $HELDOUT_URL, then the stored one)")
    return common


def _add(sub: Any, name: str, handler: Callable[[Context], int], help_text: str,
         common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text,
                                                     description=help_text, parents=[common])
    parser.set_defaults(handler=handler)
    return parser


def _login_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    login = _add(sub, "login", cmd_login, "get an API token and store it", common)
    login.add_argument("--username")
    secret = login.add_mutually_exclusive_group()
    secret.add_argument("--password", help="(visible to other users of this machine; "
                                           "prefer --password-stdin)")
    secret.add_argument("--password-stdin", action="store_true",
                        help="read the password from standard input")
    _add(sub, "logout", cmd_logout, "revoke and forget the stored token", common)


def _challenge_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    _add(sub, "challenges", cmd_challenges, "list the challenges", common)
    _add(sub, "phases", cmd_phases, "a challenge's phases: windows, kinds, quotas, metrics",
         common).add_argument("slug")
    terms = sub.add_parser("terms", help="show or accept a challenge's data-use terms")
    terms_sub = terms.add_subparsers(dest="action", required=True, metavar="{show,accept}")
    _add(terms_sub, "show", cmd_terms_show, "print the terms", common).add_argument("slug")
    _add(terms_sub, "accept", cmd_terms_accept, "accept the current terms",
         common).add_argument("slug")
    download = _add(sub, "download", cmd_download, "download the public files (after "
                                                   "accepting the terms)", common)
    download.add_argument("slug")
    download.add_argument("--dest", default=".", help="folder to write to (default: here)")


def _team_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    team = sub.add_parser("team", help="create, show, invite to, join or leave a team")
    team_sub = team.add_subparsers(dest="action", required=True,
                                   metavar="{create,show,invite,accept,leave}")
    create = _add(team_sub, "create", cmd_team_create, "create a team (you captain it)", common)
    create.add_argument("slug")
    create.add_argument("name")
    _add(team_sub, "show", cmd_team_show, "show your team", common).add_argument("slug")
    invite = _add(team_sub, "invite", cmd_team_invite, "make an invitation link (captain)",
                  common)
    invite.add_argument("slug")
    invite.add_argument("--email", help="only this address may use it")
    _add(team_sub, "accept", cmd_team_accept, "join a team with an invitation token",
         common).add_argument("token")
    _add(team_sub, "leave", cmd_team_leave, "leave your team", common).add_argument("slug")


def _submission_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    submit = _add(sub, "submit", cmd_submit, "upload a model or predictions; prints its id",
                  common)
    submit.add_argument("slug")
    submit.add_argument("phase")
    submit.add_argument("path")
    submit.add_argument("--kind", choices=["bundle", "image", "predictions"],
                        help="default: from the file (zip: bundle, tar/tar.gz: image, "
                             "csv: predictions)")
    submit.add_argument("--wait", action="store_true", help="then wait like status --wait")
    submit.add_argument("--timeout", type=float, help="with --wait: give up after SECONDS")
    status = _add(sub, "status", cmd_status, "a submission's status and scores", common)
    status.add_argument("id")
    status.add_argument("--wait", action="store_true", help="wait until it is final")
    status.add_argument("--timeout", type=float, help="with --wait: give up after SECONDS")
    status.add_argument("--logs", action="store_true", help="print the run logs you may see")
    listing = _add(sub, "submissions", cmd_submissions, "your team's submissions", common)
    listing.add_argument("slug")
    listing.add_argument("phase")
    _add(sub, "cancel", cmd_cancel, "cancel a submission still in the queue",
         common).add_argument("id")
    select = _add(sub, "select", cmd_select, "mark a submission as a final entry", common)
    select.add_argument("id")
    select.add_argument("--unselect", action="store_true", help="unmark it instead")


def _board_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    board = _add(sub, "leaderboard", cmd_leaderboard, "a phase's leaderboard", common)
    board.add_argument("slug")
    board.add_argument("phase")
    board.add_argument("--board", choices=["public", "private"], default="public")
    quota = _add(sub, "quota", cmd_quota, "your team's quota in a phase", common)
    quota.add_argument("slug")
    quota.add_argument("phase")


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="heldout", parents=[common], description="Take part in Heldout challenges.",
        epilog="exit codes: 0 ok/succeeded, 1 submission failed or cancelled, 2 error, "
               "3 submission not finished yet, 130 interrupted",
    )
    parser.add_argument("--version", action="version", version=f"heldout {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_login_parser, _challenge_parsers, _team_parsers, _submission_parsers,
                _board_parsers):
        add(sub, common)
    return parser


# --- entry point -------------------------------------------------------------------------


def error_line(error: ApiError) -> str:
    if error.status == 401 and error.code not in LOGIN_ERRORS:
        return "the token was refused; run heldout login"
    if error.code == NETWORK:
        return error.detail
    return f"{error.code}: {error.detail}"


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.handler(Context(args)))
    except ApiError as error:
        say(f"heldout: {error_line(error)}")
    except BrokenPipeError:  # `heldout ... | head`: the reader left; nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (UsageError, config.ConfigError) as error:
        say(f"heldout: {error}")
    except OSError as error:
        name = f" {error.filename}" if error.filename else ""
        say(f"heldout: cannot use{name}: {error.strerror or error}")
    return EXIT_ERROR


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, --version, or a usage error (already printed)
        return stop.code if isinstance(stop.code, int) else EXIT_ERROR
    try:
        return _run(args)
    except KeyboardInterrupt:
        say("heldout: interrupted")
        return EXIT_INTERRUPTED
    except Exception as error:  # a bug of ours: still one line, unless asked for details
        if os.environ.get("HELDOUT_DEBUG"):
            traceback.print_exc()
        say(f"heldout: unexpected error ({type(error).__name__}: {error}); "
            "set HELDOUT_DEBUG=1 for details")
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
