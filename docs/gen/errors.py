"""reference/errors.md: every error code the API answers with, by HTTP status, with the
classes that raise it (core.api.error_codes is the list; the handler and the schema read
the same), and the error classes a submission can end with."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator

from docs.gen.django_setup import setup
from docs.gen.markdown import cell, table


def _domain_classes() -> dict[str, list[type]]:
    """code -> the DomainError subclasses declaring it (imported apps only)."""
    from core.exceptions import DomainError

    found: dict[str, list[type]] = {}
    pending: list[type] = [DomainError]
    while pending:
        error = pending.pop()
        pending.extend(error.__subclasses__())
        if error is not DomainError:
            found.setdefault(error.code, []).append(error)  # type: ignore[attr-defined]
    return found


def _generic_classes() -> dict[str, list[type]]:
    from core.api import GENERIC_ERRORS

    return {error.default_code: [error] for error in GENERIC_ERRORS}


def _summary(error: type) -> str:
    """The first paragraph of the class's own docstring, else DRF's default detail, else
    the class's name in words (TermsNotAccepted: "Terms not accepted.")."""
    own = error.__dict__.get("__doc__")
    if own:
        return inspect.cleandoc(own).split("\n\n")[0].replace("\n", " ")
    detail = getattr(error, "default_detail", "")
    if detail:
        return str(detail)
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", error.__name__).lower()
    return words[0].upper() + words[1:] + "."


def _raised_by(code: str, classes: dict[str, list[type]]) -> str:
    named = [] if code not in HANDLER_CODES else ["the API's handler (`core.api`)"]
    return ", ".join(named + [f"`{error.__module__}.{error.__qualname__}`"
                              for error in sorted(classes.get(code, []),
                                                  key=lambda e: e.__qualname__)])


# Codes the API's handler answers itself (any class may raise invalid_input as well).
HANDLER_CODES = {
    "invalid_input": "A field of the request is invalid (`errors` has a message per field).",
    "internal_error": "Our fault: logged with its traceback for the operators, never shown.",
}


def _meaning(code: str, classes: dict[str, list[type]]) -> str:
    if code in HANDLER_CODES:
        return HANDLER_CODES[code]
    return next((s for s in map(_summary, classes.get(code, [])) if s), "")


def code_rows() -> Iterator[tuple[int, str, str, str]]:
    """(status, code, meaning, raised by) for every code of core.api.error_codes."""
    setup()
    from core.api import error_codes

    classes = _generic_classes()
    for code, found in _domain_classes().items():
        classes[code] = classes.get(code, []) + found
    for code, status in sorted(error_codes().items(), key=lambda item: (item[1], item[0])):
        yield status, code, _meaning(code, classes), _raised_by(code, classes)


def render() -> str:
    setup()
    from core.api import ERROR_MEANINGS

    lines = [
        "# Error codes",
        "",
        "Generated from the code (`core.api.error_codes`, which the API's exception handler "
        "and its OpenAPI schema read too). Every error the API answers is JSON "
        '`{"code": ..., "detail": ...}`: branch on `code`, show `detail` to people. '
        "`invalid_input` adds `errors`, a message per field; a chunk sent at the wrong offset "
        "(409 `invalid_upload`) adds `received` and `size`.",
        "",
    ]
    rows = list(code_rows())
    lines += table(("HTTP", "code", "meaning", "raised by"),
                   [(str(status), f"`{code}`", cell(meaning), raised)
                    for status, code, meaning, raised in rows])
    lines += ["", "## By status", ""]
    statuses = sorted({status for status, *_ in rows})
    lines += table(("HTTP", "codes", "when"), [
        (str(status), ", ".join(f"`{code}`" for s, code, *_ in rows if s == status),
         cell(ERROR_MEANINGS.get(status, "")))
        for status in statuses])
    lines += ["", "## Error classes of a submission", "",
              "A failed submission's `error_class` is one of the container contract's error "
              "classes: see [the container contract](container-contract.md#error-classes).", ""]
    return "\n".join(lines)
