"""Reading an organiser's challenge.yaml without letting the document cost more than its size.

YAML anchors and aliases let a few hundred bytes stand for billions of values (nine nested
anchors of nine items each are 9**9 strings): PyYAML shares the aliased objects, so loading
is quick, but the first `str()` or walk over the value (checking a slug, writing a problem
message) expands it and holds a web worker until it is killed. A challenge.yaml never needs
them, so they are refused where the parser meets them, with the line, before anything is
built. The file's size and its nesting depth are bounded too: a deep `[[[[...` would
otherwise end in a RecursionError instead of a problem the organiser can read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

#: A real challenge.yaml is a few kilobytes; its data live in the files it names.
MAX_YAML_BYTES = 256 * 1024
#: Mappings and lists nested deeper than this are refused (real files nest about 4 deep).
MAX_YAML_DEPTH = 32


class UnsafeYaml(ValueError):
    """challenge.yaml cannot be read safely; the message says why (and where)."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses anchors, aliases and deep nesting while composing, i.e.
    before any value is built."""

    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise UnsafeYaml(f"challenge.yaml line {event.start_mark.line + 1}: anchors and "
                             "aliases (&name / *name) are not allowed.")
        if self.depth >= MAX_YAML_DEPTH:
            raise UnsafeYaml(f"challenge.yaml line {event.start_mark.line + 1}: nested more "
                             f"than {MAX_YAML_DEPTH} levels deep.")
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def parse_challenge_yaml(text: str) -> Any:
    """The document in `text`; UnsafeYaml for anchors, aliases or deep nesting, and
    yaml.YAMLError for text that is not YAML."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_YAML_BYTES:
        raise UnsafeYaml(f"challenge.yaml is larger than {MAX_YAML_BYTES // 1024} KB.")
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_challenge_yaml(path: Path) -> Any:
    """`path` parsed like parse_challenge_yaml; the size is checked before reading.
    Raises UnsafeYaml, yaml.YAMLError or UnicodeDecodeError."""
    if path.stat().st_size > MAX_YAML_BYTES:
        raise UnsafeYaml(f"challenge.yaml is larger than {MAX_YAML_BYTES // 1024} KB.")
    return parse_challenge_yaml(path.read_text(encoding="utf-8"))
