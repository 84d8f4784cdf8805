"""The MkDocs hook (mkdocs.yml names it): adds the reference pages generated from the code
to the site being built, so `mkdocs build` alone builds everything and nothing generated is
kept in the repository."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # MkDocs loads a hook by file path, not as a package
    sys.path.insert(0, str(REPO))

from mkdocs.structure.files import File, Files  # noqa: E402

from docs.gen import bundle_keys, contract, errors, openapi, settings_ref  # noqa: E402

PAGES: dict[str, Callable[[], str]] = {
    "reference/errors.md": errors.render,
    "reference/settings.md": settings_ref.render,
    "reference/challenge-yaml.md": bundle_keys.render,
    "reference/container-contract.md": contract.render,
    "reference/api.md": openapi.render,
    "reference/openapi.yaml": openapi.schema_yaml,
}


# Pages that are one wide table: without the table of contents beside them.
WIDE = ("reference/errors.md", "reference/settings.md", "reference/challenge-yaml.md",
        "reference/container-contract.md")


def on_files(files: Files, config: Any) -> Files:
    for uri, render in PAGES.items():
        content = render()
        if uri in WIDE:
            content = "---\nhide:\n  - toc\n---\n\n" + content
        files.append(File.generated(config, uri, content=content))
    return files
