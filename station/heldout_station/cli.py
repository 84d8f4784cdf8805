"""`heldout-station`: run a data station (see station/__init__.py for what leaves it).

    heldout-station --url https://heldout.example.org --data /srv/hidden --allow SLUG [--once]

The token comes from --token or the environment variable HELDOUT_STATION_TOKEN (prefer the
variable: command lines are visible to other users of the machine). The challenges served
come from --allow (repeatable) or else HELDOUT_STATION_ALLOW (comma-separated slugs); with
neither the station refuses every job. Exit status: 0 after a
clean stop (or one job with --once), 1 when the station cannot start (Docker engine,
platform unreachable), 2 for a usage problem or a token the platform refuses.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from heldout_kernel.sandbox.base import BackendError
from heldout_kernel.sandbox.docker import DockerBackend
from heldout_station.client import Platform, PlatformError, Stopped, Unauthorized
from heldout_station.datasets import discover
from heldout_station.runner import Options, StateError, Station

logger = logging.getLogger("heldout_station")

TOKEN_ENV = "HELDOUT_STATION_TOKEN"
ALLOW_ENV = "HELDOUT_STATION_ALLOW"
SLUG = re.compile(r"[-a-zA-Z0-9_]+")
DEFAULT_STATE = Path("~/.heldout-station")


class UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="heldout-station",
        description="Run submitted models next to hidden data and send back aggregates only.")
    parser.add_argument("--url", required=True, help="the platform, e.g. https://heldout.org")
    parser.add_argument("--token", help=f"the station token (default: ${TOKEN_ENV})")
    parser.add_argument("--data", required=True, type=Path,
                        help="folder of datasets: DIR/<name>/inputs/ and labels.csv")
    parser.add_argument("--state", type=Path, default=DEFAULT_STATE,
                        help="where per-case outputs and logs are kept (default: %(default)s)")
    parser.add_argument("--work", type=Path, default=None,
                        help="scratch folder for downloads (default: the system's temp)")
    parser.add_argument("--poll", type=float, default=None, metavar="SECONDS",
                        help="seconds between claims when idle (default: the platform's)")
    parser.add_argument("--once", action="store_true",
                        help="claim until a job arrives, run it, exit")
    parser.add_argument("--allow", action="append", default=None, metavar="SLUG",
                        help="serve this challenge (repeatable; default: the "
                             f"comma-separated slugs in ${ALLOW_ENV}); jobs of other "
                             "challenges are refused")
    return parser


def _token(given: str | None) -> str:
    token = given or os.environ.get(TOKEN_ENV, "")
    if not token:
        raise UsageError(f"no token: pass --token or set {TOKEN_ENV}")
    if not token.isascii() or not token.isprintable() or any(c.isspace() for c in token):
        raise UsageError("the token contains spaces or characters a header cannot carry")
    return token


def _allowed(given: list[str] | None) -> frozenset[str]:
    """--allow if given at all, else the environment variable (not both: what the command
    line says is all the station serves)."""
    slugs = given if given is not None else os.environ.get(ALLOW_ENV, "").split(",")
    slugs = [slug.strip() for slug in slugs if slug.strip()]
    bad = [slug for slug in slugs if not SLUG.fullmatch(slug)]
    if bad:
        raise UsageError(f"--allow / {ALLOW_ENV}: {bad[0]!r} is not a challenge slug")
    return frozenset(slugs)


def _options(args: argparse.Namespace) -> Options:
    if not args.url.startswith(("http://", "https://")):
        raise UsageError("--url must start with http:// or https://")
    allow = _allowed(args.allow)
    data = args.data.expanduser().resolve()
    if not data.is_dir():
        raise UsageError(f"--data {data} is not a folder")
    if not discover(data):
        raise UsageError(f"no datasets in {data}: expected {data}/<name>/inputs/ and "
                         f"{data}/<name>/labels.csv")
    state = args.state.expanduser().resolve()
    work = (args.work.expanduser() if args.work else Path(tempfile.gettempdir())).resolve()
    for name, folder in (("--state", state), ("--work", work)):
        if folder == data or folder.is_relative_to(data):
            raise UsageError(f"{name} must not be inside --data (per-case outputs stay out "
                             "of the data folder)")
    if args.poll is not None and args.poll <= 0:
        raise UsageError("--poll must be positive")
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    work.mkdir(parents=True, exist_ok=True)
    return Options(data_dir=data, state_dir=state, work_dir=work, poll_seconds=args.poll,
                   allow=allow)


def _log_to_stderr() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s",
                                           "%Y-%m-%d %H:%M:%S"))
    for name in ("heldout_station", "heldout_kernel"):
        logging.getLogger(name).addHandler(handler)
    logger.setLevel(logging.INFO)
    return handler


def _unlog(handler: logging.Handler) -> None:
    for name in ("heldout_station", "heldout_kernel"):
        logging.getLogger(name).removeHandler(handler)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = _log_to_stderr()
    try:
        try:
            token, options = _token(args.token), _options(args)
        except UsageError as error:
            logger.error("%s", error)
            return 2
        return _serve(args, token, options)
    finally:
        _unlog(handler)


def _serve(args: argparse.Namespace, token: str, options: Options) -> int:
    stop = threading.Event()
    station = Station(platform=Platform(args.url, token, stop=stop), backend=DockerBackend(),
                      options=options, stop=stop)
    restore = _on_signals(stop, station)
    try:
        station.start()
        station.serve(once=args.once)
    except Unauthorized as error:
        logger.error("%s: check --token / %s", error, TOKEN_ENV)
        return 2
    except Stopped:
        pass
    except (PlatformError, BackendError, StateError) as error:
        logger.error("cannot start: %s", error)
        return 1
    finally:
        restore()
    logger.info("stopped" if stop.is_set() else "done")
    return 0


def _on_signals(stop: threading.Event, station: Station) -> Callable[[], None]:
    """SIGINT/SIGTERM: stop claiming, stop heartbeats, remove the running container; a
    second Ctrl-C interrupts for good. Only the main thread can install handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logger.warning("%s: stopping", signal.Signals(signum).name)
        stop.set()
        station.abort()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


if __name__ == "__main__":
    sys.exit(main())
