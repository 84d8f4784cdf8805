"""Text as the database can store it, whatever bytes a model wrote.

PostgreSQL's text columns refuse NUL, and a str holding lone surrogates (bytes decoded with
`surrogateescape`) cannot be encoded at all: either would fail the write of a run's log or
message, and a model could turn that failure into a free, quota-less `internal_error` on
purpose (one bit about hidden data per run). So every text column a model can reach keeps
such characters as visible escapes instead.
"""

from __future__ import annotations

from typing import Any

from django.db import models


def storable_text(text: str) -> str:
    """`text` with NUL as the four characters `\\x00` and lone surrogates as `\\udcff`-style
    escapes; anything else (control characters, any length) is kept as it is."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


class StorableTextField(models.TextField):
    """A TextField for text that a participant's model chose: written as `storable_text`,
    so the write can never fail on the model's bytes."""

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        return storable_text(value) if isinstance(value, str) else value
