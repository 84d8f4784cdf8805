"""The station's side of the API: retries, the token, stale claims."""

from __future__ import annotations

import threading
from unittest import mock

import pytest

from heldout_kernel.sandbox.base import Backend
from heldout_station import client
from heldout_station.client import Platform, Unauthorized
from heldout_station.runner import Options, Station
from tests.station.conftest import TOKEN, bundle


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    monkeypatch.setattr(client, "BACKOFF_FIRST_S", 0.01)


def test_it_retries_an_unavailable_platform(platform, offer):
    offered = offer(bundle("pass"))
    platform.unavailable = 2
    assert Platform(platform.url, TOKEN).claim() == offered
    assert [r.path for r in platform.requests].count("/api/v1/station/jobs/claim") == 3


def test_it_gives_up_after_its_retries(platform):
    platform.unavailable = 100
    with pytest.raises(client.PlatformUnavailable):
        Platform(platform.url, TOKEN).claim()
    assert len(platform.requests) == client.RETRIES + 1


def test_it_reads_nothing_to_do_and_stale_answers(platform, offer):
    api = Platform(platform.url, TOKEN)
    assert api.claim() is None
    platform.stale.add(17)
    with pytest.raises(client.StaleJob):
        api.heartbeat(17, 2)
    assert api.post_result(17, {"claim": 2}) is False
    platform.stale.clear()
    assert api.heartbeat(17, 2) == 3.0


def test_its_hello_names_the_challenges_it_serves(platform, hidden, tmp_path):
    station = Station(platform=Platform(platform.url, TOKEN),
                      backend=mock.create_autospec(Backend, instance=True),
                      options=Options(hidden.root, tmp_path / "state", tmp_path,
                                      allow=frozenset({"zeta", "alpha-2"})),
                      stop=threading.Event())
    station.hello()
    hello = platform.hellos()[0]
    assert set(hello) == {"version", "datasets", "challenges"}
    assert hello["challenges"] == ["alpha-2", "zeta"]
    assert station.name == platform.station


def test_it_stops_serving_when_its_token_is_revoked(platform, hidden, tmp_path):
    backend = mock.create_autospec(Backend, instance=True)
    station = Station(platform=Platform(platform.url, TOKEN), backend=backend,
                      options=Options(hidden.root, tmp_path / "state", tmp_path),
                      stop=threading.Event())
    station.hello()
    platform.token = "rotated"
    with pytest.raises(Unauthorized):
        station.serve()
    backend.run.assert_not_called()
