"""What a worker process does when it starts (heldout.celery)."""

from __future__ import annotations

import gc

from celery.signals import worker_init, worker_process_init

from heldout.celery import freeze_startup_objects


def test_worker_processes_freeze_their_start_up_objects() -> None:
    # Both the parent (worker_init) and each forked child (worker_process_init) freeze.
    assert freeze_startup_objects in worker_init._live_receivers(None)
    assert freeze_startup_objects in worker_process_init._live_receivers(None)
    gc.unfreeze()
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() > 10_000  # Django and the apps, out of the collector's way
    finally:
        gc.unfreeze()
