"""`heldout`: take part in Heldout challenges from a terminal or a script.

Exit codes: 0 success (for `status`/`submit --wait`: the submission succeeded); 1 the
submission failed or was cancelled; 2 usage, network, server or authentication errors;
3 the submission is not finished yet (`status` without `--wait`, or `--timeout` passed);
130 interrupted. Errors are one line on stderr; `HELDOUT_DEBUG=1` adds the traceback.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import socket
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import click

from heldout_cli import __version__, config, output, upload
from heldout_cli.api import NETWORK, ApiClient, ApiError

EXIT_OK, EXIT_FAILED, EXIT_ERROR, EXIT_PENDING, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
FINAL = {"succeeded": EXIT_OK, "failed": EXIT_FAILED, "cancelled": EXIT_FAILED}
LOGIN_ERRORS = ("invalid_credentials", "email_not_verified")
POLL_S = (1.0, 2.0, 3.0, 5.0)  # seconds between looks: quick at first, then gentler
MAX_WAIT_NETWORK_ERRORS = 10
KINDS = ("bundle", "image", "predictions")
EPILOG = ("Exit codes: 0 ok/succeeded, 1 submission failed or cancelled, 2 error, "
          "3 submission not finished yet, 130 interrupted.")

F = TypeVar("F", bound=Callable[..., Any])


class SetupError(Exception):
    """A problem with what the user typed or has set up; the message says what to do."""


def say(message: str) -> None:
    """Context for people, on stderr, so stdout keeps only what scripts parse."""
    click.echo(message, err=True)


# --- options every command takes -----------------------------------------------------------


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    # ctx.meta is shared by the group and its commands, so `heldout --json challenges` and
    # `heldout challenges --json` mean the same; a flag left off does not undo one given.
    if value:
        ctx.meta[f"heldout.{param.name}"] = value


def _option(name: str) -> Any:
    return click.get_current_context().meta.get(f"heldout.{name}")


def common_options(command: F) -> F:
    command = click.option("--json", "json_output", is_flag=True, expose_value=False,
                           callback=_remember,
                           help="Print JSON for scripts instead of tables.")(command)
    return click.option("--url", metavar="URL", expose_value=False, callback=_remember,
                        help="Server URL (default: $HELDOUT_URL, then the stored one).")(command)


def api_client(*, anonymous: bool = False) -> ApiClient:
    settings = config.load(url_override=_option("url"))
    if not settings.url:
        raise SetupError("no server configured; run heldout login (or set HELDOUT_URL)")
    if not settings.token and not anonymous:
        raise SetupError("not logged in; run heldout login (or set HELDOUT_TOKEN)")
    return ApiClient(settings.url, settings.token)


def emit(data: Any, text: str) -> None:
    """`text` for people, or `data` as JSON with --json."""
    if _option("json_output"):
        output.dump_json(data)
    else:
        click.echo(text)


# --- errors ------------------------------------------------------------------------------


def error_line(error: ApiError) -> str:
    if error.status == 401 and error.code not in LOGIN_ERRORS:
        return "the token was refused; run heldout login"
    if error.code == NETWORK:
        return error.detail
    return f"{error.code}: {error.detail}"


def guarded(call: Callable[[], Any]) -> Any:
    """Run a command; our errors become one line on stderr and an exit code. click's own
    (usage errors, --help) pass through to `main`."""
    try:
        return call()
    except ApiError as error:
        say(f"heldout: {error_line(error)}")
    except (SetupError, config.ConfigError) as error:
        say(f"heldout: {error}")
    except BrokenPipeError:  # `heldout ... | head`: the reader left; nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except OSError as error:
        name = f" {error.filename}" if error.filename else ""
        say(f"heldout: cannot use{name}: {error.strerror or error}")
    except KeyboardInterrupt:
        say("heldout: interrupted")
        return EXIT_INTERRUPTED
    return EXIT_ERROR


class HeldoutGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        return guarded(partial(super().invoke, ctx))


@click.group(cls=HeldoutGroup, epilog=EPILOG,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="heldout",
                      message="%(prog)s %(version)s")
@common_options
def cli() -> None:
    """Take part in Heldout challenges."""


# --- login -------------------------------------------------------------------------------


def _ask(prompt: str, default: str | None = None) -> str:
    # Not click.prompt: that writes part of its prompt to stdout, which scripts parse.
    shown = f"{prompt} [{default}]: " if default else f"{prompt}: "
    sys.stderr.write(shown)
    sys.stderr.flush()
    answer = sys.stdin.readline()
    if not answer:
        raise SetupError(f"no {prompt.lower()} given")
    return answer.strip() or (default or "")


def _password(password: str | None, from_stdin: bool) -> str:
    if password is not None:
        return password
    if from_stdin or not sys.stdin.isatty():
        line = sys.stdin.readline()
        if not line:
            raise SetupError("no password on standard input")
        return line.rstrip("\r\n")
    return getpass.getpass("Password: ")


def _known_url() -> str | None:
    try:
        return config.load().url
    except config.ConfigError:  # a damaged file is simply rewritten by this login
        return None


@cli.command()
@common_options
@click.option("--username")
@click.option("--password", help="Visible to other users of this machine; "
                                 "prefer --password-stdin.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def login(username: str | None, password: str | None, password_stdin: bool) -> int:
    """Get an API token and store it."""
    if password is not None and password_stdin:
        click.get_current_context().fail("--password and --password-stdin exclude each other")
    given = _option("url")
    url = config.normalise_url(given or _ask("Server URL", _known_url() or config.DEFAULT_URL))
    username = username or _ask("Username")
    secret = _password(password, password_stdin)
    if not username or not secret:
        raise SetupError("a username and a password are needed")
    key = ApiClient(url).obtain_token(username=username, password=secret,
                                      name=f"heldout CLI on {socket.gethostname()}"[:100])
    path = config.save(url=url, token=key)
    if os.environ.get("HELDOUT_TOKEN"):
        say("note: HELDOUT_TOKEN is set and overrides the stored token")
    emit({"url": url, "username": username, "config": str(path)},
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


@cli.command()
@common_options
def logout() -> int:
    """Revoke and forget the stored token."""
    stored = config.load(url_override=_option("url"))
    if os.environ.get("HELDOUT_TOKEN"):
        raise SetupError("HELDOUT_TOKEN is set; unset it (and revoke it on your profile page)")
    revoked = _revoke(stored)
    path = config.forget_token()
    text = (f"Logged out{' (token revoked)' if revoked else ''}; removed the token from {path}"
            if path else "No stored token.")
    emit({"config": str(path) if path else None, "revoked": revoked}, text)
    return EXIT_OK


# --- challenges, terms, files --------------------------------------------------------------


@cli.command()
@common_options
def challenges() -> int:
    """List the challenges."""
    items = api_client(anonymous=True).challenges()
    emit(items, output.challenges_table(items) if items else "No challenges.")
    return EXIT_OK


@cli.command()
@common_options
@click.argument("slug")
def phases(slug: str) -> int:
    """A challenge's phases: windows, kinds, quotas, metrics."""
    challenge = api_client(anonymous=True).challenge(slug)
    emit(challenge, output.phases_table(challenge))
    return EXIT_OK


@cli.group()
def terms() -> None:
    """Show or accept a challenge's data-use terms."""


@terms.command("show")
@common_options
@click.argument("slug")
def terms_show(slug: str) -> int:
    """Print the terms."""
    challenge = api_client(anonymous=True).challenge(slug)
    data = {"slug": challenge.get("slug"), "terms": challenge.get("terms"),
            "terms_version": challenge.get("terms_version")}
    emit(data, (challenge.get("terms") or "This challenge has no terms.").rstrip())
    return EXIT_OK


@terms.command("accept")
@common_options
@click.argument("slug")
def terms_accept(slug: str) -> int:
    """Accept the current terms."""
    acceptance = api_client().accept_terms(slug)
    emit(acceptance, f"Accepted version {acceptance.get('version')} of the data-use terms "
                     f"of {slug}.")
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
    with output.progress(str(item["name"]), item.get("size")) as update:
        client.download(item["download_url"], target, update)
    if expected and _sha256(target) != expected:
        target.unlink(missing_ok=True)
        raise ApiError("checksum_mismatch", f"{item['name']} arrived corrupted; run it again")
    return {"name": item["name"], "path": str(target), "status": "downloaded"}


@cli.command()
@common_options
@click.argument("slug")
@click.option("--dest", default=".", show_default=True, help="Folder to write to.")
def download(slug: str, dest: str) -> int:
    """Download the public files (after accepting the terms)."""
    client = api_client()
    done = [_download_one(client, item, Path(dest)) for item in client.files(slug)]
    table = output.render_table(["FILE", "STATUS", "PATH"],
                                [[d["name"], d["status"], d["path"]] for d in done])
    emit(done, table if done else "This challenge has no public files.")
    return EXIT_OK


# --- teams -------------------------------------------------------------------------------


@cli.group()
def team() -> None:
    """Create, show, invite to, join or leave a team."""


@team.command("create")
@common_options
@click.argument("slug")
@click.argument("name")
def team_create(slug: str, name: str) -> int:
    """Create a team (you captain it)."""
    created = api_client().team_create(slug, name)
    emit(created, output.team_text(created))
    return EXIT_OK


@team.command("show")
@common_options
@click.argument("slug")
def team_show(slug: str) -> int:
    """Show your team."""
    mine = api_client().team_mine(slug)
    emit(mine, output.team_text(mine))
    return EXIT_OK


@team.command("invite")
@common_options
@click.argument("slug")
@click.option("--email", help="Only this address may use it.")
def team_invite(slug: str, email: str | None) -> int:
    """Make an invitation link (captain)."""
    invitation = api_client().team_invite(slug, email or "")
    who = f" for {invitation['email']}" if invitation.get("email") else ""
    until = output.when(invitation.get("expires_at"))
    emit(invitation, f"Invitation{who} (valid until {until}):\n{invitation.get('url')}\n"
                     f"or: heldout team accept {invitation.get('token')}")
    return EXIT_OK


@team.command("accept")
@common_options
@click.argument("token")
def team_accept(token: str) -> int:
    """Join a team with an invitation token."""
    joined = api_client().invitation_accept(token)
    emit(joined, output.team_text(joined))
    return EXIT_OK


@team.command("leave")
@common_options
@click.argument("slug")
def team_leave(slug: str) -> int:
    """Leave your team."""
    api_client().team_leave(slug)
    emit({"left": True}, f"You left your team in {slug}.")
    return EXIT_OK


# --- submissions -------------------------------------------------------------------------


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
    start, errors, polls = time.monotonic(), 0, 0
    submission: dict[str, Any] = {}
    with output.spinner() as show:
        while True:
            found, errors = _poll(client, submission_id, errors)
            submission = found or submission
            timed_out = timeout is not None and time.monotonic() - start >= timeout
            if submission and (_status_exit(submission) != EXIT_PENDING or timed_out):
                return submission
            show(str(submission.get("status")) if found else "server unreachable")
            sleep(POLL_S[min(polls, len(POLL_S) - 1)])
            polls += 1


def _submission_id(value: str) -> str:
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        raise SetupError(f"not a submission id: {value!r} (ids look like "
                         "1b4e28ba-2fa1-11d2-883f-0016d3cca427)") from None


def _show_submission(submission: dict[str, Any], *, logs: bool = False) -> int:
    text = output.submission_text(submission)
    if logs:
        text += "\n\n" + output.runs_text(submission)
    emit(submission, text)
    return _status_exit(submission)


def _wait_and_show(client: ApiClient, submission_id: str, *, timeout: float | None,
                   logs: bool = False) -> int:
    submission = wait_final(client, submission_id, timeout=timeout)
    code = _show_submission(submission, logs=logs)
    if code == EXIT_PENDING:
        say(f"heldout: still {submission.get('status')} after {timeout or 0:.0f} s; "
            f"wait again with: heldout status {submission_id} --wait")
    return code


def _kind(given: str | None, path: Path) -> str:
    kind = given or upload.detect_kind(path)
    if kind is None:
        raise SetupError(f"cannot tell the kind of {path.name}; pass --kind "
                         "bundle|image|predictions")
    return kind


wait_option = click.option("--wait", is_flag=True, help="Wait until it is final.")
timeout_option = click.option("--timeout", type=float, metavar="SECONDS",
                              help="With --wait: give up after SECONDS.")


@cli.command()
@common_options
@click.argument("slug")
@click.argument("phase")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--kind", type=click.Choice(KINDS),
              help="Default: from the file (zip: bundle, tar/tar.gz: image, csv: predictions).")
@wait_option
@timeout_option
def submit(slug: str, phase: str, path: Path, kind: str | None, wait: bool,
           timeout: float | None) -> int:
    """Upload a model or predictions; prints its id."""
    if not path.is_file():
        raise SetupError(f"no such file: {path}")
    kind = _kind(kind, path)
    client = api_client()
    with output.progress(f"{path.name} ({kind})", path.stat().st_size) as update:
        submission = upload.submit_file(client, slug=slug, phase=phase, path=path, kind=kind,
                                        on_progress=update)
    say(f"Submitted {path.name} ({kind}) as #{submission.get('number')} of team "
        f"{submission.get('team')}; follow it with: heldout status {submission['id']} --wait")
    if wait:
        return _wait_and_show(client, str(submission["id"]), timeout=timeout)
    emit(submission, str(submission["id"]))
    return EXIT_OK


@cli.command()
@common_options
@click.argument("submission_id", metavar="ID")
@wait_option
@timeout_option
@click.option("--logs", is_flag=True, help="Print the run logs you may see.")
def status(submission_id: str, wait: bool, timeout: float | None, logs: bool) -> int:
    """A submission's status and scores."""
    submission_id = _submission_id(submission_id)
    client = api_client()
    if wait:
        return _wait_and_show(client, submission_id, timeout=timeout, logs=logs)
    return _show_submission(client.submission(submission_id), logs=logs)


@cli.command()
@common_options
@click.argument("slug")
@click.argument("phase")
def submissions(slug: str, phase: str) -> int:
    """Your team's submissions."""
    client = api_client()
    items = client.submissions(slug, phase)
    primary = None
    if not _option("json_output"):
        phase_list = client.challenge(slug).get("phases", [])
        primary = next((p.get("primary_metric") for p in phase_list
                        if p.get("slug") == phase), None)
    emit(items, output.submissions_table(items, primary) if items else "No submissions yet.")
    return EXIT_OK


@cli.command()
@common_options
@click.argument("submission_id", metavar="ID")
def cancel(submission_id: str) -> int:
    """Cancel a submission still in the queue."""
    submission = api_client().cancel(_submission_id(submission_id))
    emit(submission, f"Submission #{submission.get('number')} is {submission.get('status')}.")
    return EXIT_OK


@cli.command()
@common_options
@click.argument("submission_id", metavar="ID")
@click.option("--unselect", is_flag=True, help="Unmark it instead.")
def select(submission_id: str, unselect: bool) -> int:
    """Mark a submission as a final entry."""
    submission = api_client().select(_submission_id(submission_id), selected=not unselect)
    verb = "selected as" if submission.get("selected") else "no longer"
    emit(submission, f"Submission #{submission.get('number')} is {verb} a final entry.")
    return EXIT_OK


# --- boards ------------------------------------------------------------------------------


@cli.command()
@common_options
@click.argument("slug")
@click.argument("phase")
@click.option("--board", type=click.Choice(["public", "private"]), default="public",
              show_default=True)
def leaderboard(slug: str, phase: str, board: str) -> int:
    """A phase's leaderboard."""
    shown = api_client(anonymous=True).leaderboard(slug, phase, board)
    emit(shown, output.leaderboard_text(shown))
    return EXIT_OK


@cli.command()
@common_options
@click.argument("slug")
@click.argument("phase")
def quota(slug: str, phase: str) -> int:
    """Your team's quota in a phase."""
    left = api_client().quota(slug, phase)
    emit(left, output.quota_text(left))
    return EXIT_OK


# --- entry point -------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    try:
        result = cli.main(args=argv, prog_name="heldout", standalone_mode=False)
    except click.ClickException as error:  # usage errors: click prints usage and reason
        error.show()
        return EXIT_ERROR
    except click.Abort:  # Ctrl-C outside a command (while parsing)
        say("heldout: interrupted")
        return EXIT_INTERRUPTED
    except Exception as error:  # a bug of ours: still one line, unless asked for details
        if os.environ.get("HELDOUT_DEBUG"):
            traceback.print_exc()
        say(f"heldout: unexpected error ({type(error).__name__}: {error}); "
            "set HELDOUT_DEBUG=1 for details")
        return EXIT_ERROR
    return result if isinstance(result, int) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
