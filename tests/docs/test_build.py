"""`make docs` builds the site in strict mode, with every guide and the reference pages
generated from the code, without a database (the build is given one that answers nothing)."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from tests.conftest import REPO
from tests.docs.conftest import Build, build_site

GUIDES = ("participants", "team-scripts/rest-api", "team-scripts/cli", "organisers",
          "organisers/bundles", "organisers/release-policies", "organisers/audit",
          "hospitals", "operators", "operators/production", "operators/configuration",
          "operators/sandbox", "operators/scaling", "operators/audit-and-backups",
          "data-protection", "performance")
REFERENCES = ("errors", "settings", "challenge-yaml", "container-contract", "api")


def test_the_site_builds_in_strict_mode_without_a_database(built: Build) -> None:
    assert built.returncode == 0, built.output
    assert "WARNING" not in built.output


def test_it_holds_every_guide_and_generated_reference(site: Path) -> None:
    for page in (*GUIDES, *(f"reference/{name}" for name in REFERENCES)):
        assert (site / page / "index.html").is_file(), page
    schema = yaml.safe_load((site / "reference" / "openapi.yaml").read_text())
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/challenges/" in schema["paths"]


def test_the_sources_and_generators_are_not_published(site: Path) -> None:
    published = {path.relative_to(site).as_posix() for path in site.rglob("*")}
    assert not any(name.startswith("gen") or name.endswith(".py") for name in published)
    assert "README.new.md" not in published


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    """Strict mode is what keeps the guides' links true: a copy of the sources with one link
    to a missing page does not build."""
    copy = tmp_path / "repo"
    shutil.copytree(REPO / "docs", copy / "docs", ignore=shutil.ignore_patterns("gen"))
    (copy / "docs" / "gen").symlink_to(REPO / "docs" / "gen")  # generating from this checkout
    shutil.copy(REPO / "mkdocs.yml", copy / "mkdocs.yml")
    page = copy / "docs" / "participants" / "index.md"
    page.write_text(page.read_text() + "\nSee [the missing page](missing.md).\n")
    broken = build_site(tmp_path / "site", tmp_path / "var", root=copy)
    assert broken.returncode != 0
    assert "'missing.md'" in broken.output, broken.output
