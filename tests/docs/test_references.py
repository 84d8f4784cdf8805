"""Each generated reference lists everything its code declares, compared with the code by a
second reading of it: every API error code with its status, every setting read by
heldout/settings.py (each with a meaning), every key of challenge.yaml, the container
contract's error classes and sentences, every operation of the OpenAPI schema."""

from __future__ import annotations

import re

from core.api import error_codes
from docs.gen import bundle_keys, contract, errors, openapi, settings_ref
from heldout_kernel import contract as contract_module
from submissions.models import Submission
from tests.conftest import REPO


def table_rows(markdown: str, header: str) -> list[list[str]]:
    """The cells of the table whose header row starts with `header`."""
    table = markdown[markdown.index(header):].split("\n\n", 1)[0]
    return [[cell.strip() for cell in row.strip().strip("|").split(" | ")]
            for row in table.splitlines()[2:]]


def test_the_error_reference_lists_every_code_with_its_status() -> None:
    page = errors.render()
    rows = table_rows(page, "| HTTP | code |")
    listed = {code.strip("`"): int(status) for status, code, *_ in rows}
    assert listed == error_codes()
    by_status = {}
    for status, codes, _ in table_rows(page, "| HTTP | codes |"):
        by_status |= {code.strip("` "): int(status) for code in codes.split(",")}
    assert by_status == error_codes()


def test_every_code_names_its_meaning_and_where_it_comes_from() -> None:
    for _status, code, meaning, raised_by in errors.code_rows():
        assert meaning and raised_by, code


def test_the_settings_reference_lists_every_variable_settings_py_reads() -> None:
    source = (REPO / "heldout" / "settings.py").read_text()
    read = set(re.findall(r"env_(?:str|bool|int|list)\(\s*\"([A-Z0-9_]+)\"", source))
    page = settings_ref.render()
    listed = {row[0].rsplit("`", 2)[-2] for row in table_rows(page, "| variable |")}
    assert listed == read
    assert "HELDOUT_DOCS_DIR" in listed


def test_every_setting_has_a_meaning_from_the_comment_above_it() -> None:
    """The way to document a setting is a comment above the line reading it."""
    assert [s.name for s in settings_ref.read_settings() if not s.meaning] == []


def test_a_setting_s_default_is_shown_as_written() -> None:
    found = {s.name: s for s in settings_ref.read_settings()}
    assert found["HELDOUT_MAX_REQUEST_BYTES"].default == "`1024 ** 2` (1 MiB)"
    assert found["HELDOUT_PRIVATE_ROOT"].default == "`$HELDOUT_VAR_DIR / 'private'`"
    assert found["HELDOUT_RELEASE_SECONDS"].minimum == "`1`"


def test_the_challenge_yaml_reference_lists_every_key_the_importer_accepts() -> None:
    module = bundle_keys._module()
    page = bundle_keys.render()
    for section in bundle_keys.SECTIONS:
        accepted = bundle_keys.keys_of(section, module)
        assert set(section.words) == accepted, section.title  # words for each, and no more
        body = page[page.index(f"## {section.title}\n"):]
        listed = {row[0].strip("`") for row in table_rows(body, "| key |")}
        assert listed == accepted, section.title


def test_every_key_set_of_the_importer_has_a_section() -> None:
    module = bundle_keys._module()
    declared = {name for name in dir(module) if name.endswith("_KEYS")}
    assert declared == {s.key_set for s in bundle_keys.SECTIONS} - set(bundle_keys.INLINE_KEYS)


def test_the_importer_s_defaults_are_shown() -> None:
    applied = bundle_keys.defaults()
    assert (applied["per_day"], applied["seconds"], applied["eta"]) == ("5", "600", "0.01")


def test_the_contract_lists_every_error_class_with_the_judge_s_sentence() -> None:
    module = contract.load()
    codes = [contract.field(item, "code") for item in module.ERROR_CLASSES]
    assert codes == list(Submission.ErrorClass.values)
    sentences = {contract.field(item, "code"): contract.field(item, "sentence")
                 for item in module.ERROR_CLASSES}
    for code, sentence in contract_module.HIDDEN_LANE_MESSAGES.items():
        assert sentences[code].startswith(sentence)
    page = contract.render()
    for code in codes:
        assert f"| `{code}` |" in page


def test_the_contract_is_read_from_the_module_given_in_one_place() -> None:
    assert contract.load().__name__ == contract.CONTRACT_MODULE
    assert f"Generated from `{contract.CONTRACT_MODULE}`" in contract.render()


def test_the_api_reference_lists_every_operation_of_the_schema() -> None:
    spec = openapi.schema()
    page = openapi.render()
    for path, item in spec["paths"].items():
        for method in item:
            assert f"### `{method.upper()} {path}`" in page
