"""The short README: under 150 lines, and every link it gives leads to a file of the
repository (it is read on GitHub as well as in the checkout, where the guides are Markdown
files under docs/)."""

from __future__ import annotations

import re

from tests.conftest import REPO

# The README.
README = "README.md"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_it_is_under_150_lines() -> None:
    assert len((REPO / README).read_text().splitlines()) < 150


def test_its_links_lead_to_files_of_the_repository() -> None:
    text = (REPO / README).read_text()
    links = [link for link in LINK.findall(text) if "://" not in link]
    assert links
    for link in links:
        path, _, anchor = link.partition("#")
        target = REPO / path  # relative to the repository's root, where README.md lives
        assert target.is_file(), link
        if anchor:
            headings = re.findall(r"^#+ (.+)$", target.read_text(), re.MULTILINE)
            slugs = {re.sub(r"[^a-z0-9]+", "-", h.lower()).strip("-") for h in headings}
            assert anchor in slugs, link


def test_it_links_every_guide() -> None:
    text = (REPO / README).read_text()
    for guide in ("participants/index.md", "team-scripts/rest-api.md", "team-scripts/cli.md",
                  "organisers/index.md", "hospitals/index.md", "operators/index.md",
                  "data-protection.md", "performance.md"):
        assert f"](docs/{guide})" in text, guide
