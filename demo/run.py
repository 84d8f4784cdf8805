"""`make demo`: a working Heldout with two real challenges, served with a scoring worker.

Builds the challenge bundles from the real data (or labelled synthetic stand-ins), imports
them through `import_challenge` (the real path), creates an organiser and two demo teams,
submits the example models as baselines and team entries, then runs the web server, a
Celery worker (scoring queue, one container at a time) and beat until Ctrl-C.

`--stations` (`make demo-stations`) adds the two-station variant of the readmission challenge
(demo/stations.py): two `heldout-station` processes score it next to their own data.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "heldout.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")
# Links in result e-mails (sent by the worker) lead to the port the demo serves on.
os.environ.setdefault("HELDOUT_SITE_URL", "http://{}:{}".format(
    os.environ.get("HELDOUT_DEMO_HOST", "127.0.0.1"), os.environ.get("HELDOUT_DEMO_PORT", "8000")))

import django  # noqa: E402

django.setup()

from allauth.account.models import EmailAddress  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.core.management import call_command  # noqa: E402

from challenges import services as challenge_services  # noqa: E402
from challenges.models import Challenge, Membership, Team  # noqa: E402
from challenges.selectors import ORGANISERS_GROUP  # noqa: E402
from demo import stations as station_demo  # noqa: E402
from demo.bundles import build_demo_bundles, default_data_dir  # noqa: E402
from heldout.celery import ensure_broker_folders  # noqa: E402
from submissions.models import Submission  # noqa: E402

PASSWORD = "heldout-demo"  # demo accounts only; the demo runs with DEBUG on, locally
HOST = os.environ.get("HELDOUT_DEMO_HOST", "127.0.0.1")
PORT = os.environ.get("HELDOUT_DEMO_PORT", "8000")


def _user(username: str, *, staff: bool = False, superuser: bool = False):  # type: ignore[no-untyped-def]
    user, created = get_user_model().objects.get_or_create(
        username=username, defaults={"email": f"{username}@demo.heldout.invalid"})
    if created:
        user.set_password(PASSWORD)
    user.is_staff, user.is_superuser = staff or superuser, superuser
    user.save()
    EmailAddress.objects.update_or_create(
        user=user, email=user.email, defaults={"verified": True, "primary": True})
    return user


def _team(challenge: Challenge, name: str, captain, members=(), organisers: bool = False) -> Team:  # type: ignore[no-untyped-def]
    team = Team.objects.filter(challenge=challenge, name=name).first()
    for user in (captain, *members):
        challenge_services.terms_accept(challenge=challenge, user=user)
    if team is None:
        team = challenge_services.team_create(challenge=challenge, user=captain, name=name)
    for user in members:
        Membership.objects.get_or_create(team=team, user=user, challenge=challenge)
    if organisers and not team.is_organiser_team:
        Team.objects.filter(pk=team.pk).update(is_organiser_team=True)
    return team


def setup_people() -> dict[str, object]:
    olga = _user("olga", staff=True)
    # The group lets her create and import challenges, not only edit the demo's.
    olga.groups.add(Group.objects.get(name=ORGANISERS_GROUP))
    admin = _user("admin", superuser=True)
    alice, bob, carol = _user("alice"), _user("bob"), _user("carol")
    teams = {}
    for challenge in Challenge.objects.all():
        challenge.organisers.add(olga)
        teams[challenge.slug] = {
            "organisers": _team(challenge, "Organisers", olga, organisers=True),
            "alpha": _team(challenge, "Alpha", alice, [bob]),
            "bravo": _team(challenge, "Bravo", carol),
        }
    return {"olga": olga, "admin": admin, "alice": alice, "carol": carol, "teams": teams}


def import_bundles(root: Path) -> list[str]:
    built = build_demo_bundles(root, data_dir=default_data_dir())
    for bundle in built:
        call_command("import_challenge", str(bundle.path))
        label = "SYNTHETIC stand-in" if bundle.synthetic else "real data"
        print(f"  {bundle.slug}: {bundle.n_train} training / {bundle.n_test} hidden cases "
              f"({label})")
    return [bundle.slug for bundle in built]


def submit_examples(
    people: dict[str, object], bundle_root: Path, *, stations: bool = False
) -> None:
    from demo.entries import submit_demo_entries, submit_station_entries

    if not Submission.objects.exists():
        submit_demo_entries(people, bundle_root, stations=stations)
    elif stations and not Submission.objects.filter(
            phase__challenge__slug=station_demo.SLUG).exists():
        submit_station_entries(people, bundle_root)  # a database from a plain `make demo`
    # otherwise examples were submitted by an earlier run; the worker picks up leftovers


def _processes() -> list[subprocess.Popen[bytes]]:
    python = sys.executable
    env = {**os.environ, "DJANGO_DEBUG": "1"}
    commands = [
        [python, "-m", "celery", "-A", "heldout", "worker", "-Q", "scoring,default",
         "--concurrency", "1", "--prefetch-multiplier", "1", "-l", "INFO"],
        [python, "-m", "celery", "-A", "heldout", "beat", "-l", "WARNING",
         "-s", str(Path(settings.VAR_DIR) / "celerybeat-schedule")],
        [python, "manage.py", "runserver", "--noreload", f"{HOST}:{PORT}"],
    ]
    return [subprocess.Popen(command, env=env) for command in commands]


def _start_stations(demo: station_demo.StationDemo | None,
                    server: subprocess.Popen[bytes]) -> list[subprocess.Popen[bytes]]:
    if demo is None:
        return []
    url = f"http://{HOST}:{PORT}"
    station_demo.wait_for_server(url, server)
    return station_demo.start_stations(demo, url)


def _banner(demo: station_demo.StationDemo | None) -> str:
    stations = f"{station_demo.banner(demo)}\n" if demo is not None else ""
    return f"""
Heldout demo is running at http://{HOST}:{PORT}/
  organiser (admin at /admin/):  olga / {PASSWORD}
  participants:                  alice / {PASSWORD} (captain of Alpha, with bob)
                                 carol / {PASSWORD} (Bravo)
  superuser:                     admin / {PASSWORD}
{stations}Example models were submitted; watch them being scored on each phase page. Ctrl-C stops.
"""


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait(timeout=30)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m demo.run",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--stations", action="store_true",
                        help="also run the readmission challenge at two data stations")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    Path(settings.VAR_DIR).mkdir(parents=True, exist_ok=True)
    ensure_broker_folders()
    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    print("Building and importing the demo challenges:")
    bundle_root = Path(settings.VAR_DIR) / "demo-bundles"
    import_bundles(bundle_root)
    demo = (station_demo.prepare(bundle_root, Path(settings.VAR_DIR) / "demo-stations")
            if args.stations else None)
    people = setup_people()
    processes = _processes()
    try:
        # stations first in the list: they stop before the server they report to
        processes = _start_stations(demo, processes[-1]) + processes
        submit_examples(people, bundle_root, stations=args.stations)
        print(_banner(demo), flush=True)
        processes[-1].wait()
    except KeyboardInterrupt:
        pass
    finally:
        _stop(processes)


if __name__ == "__main__":
    main()
