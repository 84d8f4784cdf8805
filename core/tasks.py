"""The one task decorator: every Heldout task is late-acknowledged and re-queued when its
worker dies, so no submission is lost; tasks themselves must be idempotent. And core's own
periodic task: the audit trail's checkpoint."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import shared_task


def heldout_task(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    defaults = {"acks_late": True, "reject_on_worker_lost": True, "ignore_result": True}
    return shared_task(**{**defaults, **options})  # type: ignore[no-any-return]


@heldout_task()
def audit_checkpoint() -> None:
    """Beat's periodic checkpoint of the audit trail (an extra line, if redelivered, is
    harmless)."""
    from core.services import audit_checkpoint_write  # models are not ready at import

    audit_checkpoint_write()
