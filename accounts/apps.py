from __future__ import annotations

import re

from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured

_RATE = re.compile(r"^[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)$")


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and API tokens"

    def ready(self) -> None:
        check_throttle_rates()


def check_throttle_rates() -> None:
    """Refuse to start with a throttle rate DRF would only reject at the first request."""
    from django.conf import settings

    rates = getattr(settings, "REST_FRAMEWORK", {}).get("DEFAULT_THROTTLE_RATES", {})
    for scope, rate in rates.items():
        if rate is not None and not _RATE.match(str(rate)):
            raise ImproperlyConfigured(
                f"API throttle rate for {scope!r} is {rate!r}; use e.g. '60/minute'."
            )
