"""/docs/ serves the built site: its index, a guide, its assets; a folder without its slash
is redirected; nothing outside the site; and where the site is not built, how to build it."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def served(settings, site: Path) -> Path:  # type: ignore[no-untyped-def]
    settings.HELDOUT_DOCS_DIR = site
    return site


def test_it_serves_the_index_and_a_guide_page(client, served) -> None:  # type: ignore[no-untyped-def]
    index = client.get("/docs/")
    assert index.status_code == 200
    assert index["Content-Type"].startswith("text/html")
    assert b"Find your guide" in b"".join(index.streaming_content)
    guide = client.get("/docs/participants/")
    assert guide.status_code == 200
    assert b"Accept the terms" in b"".join(guide.streaming_content)


def test_it_serves_a_generated_reference_and_the_assets(client, served) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/docs/reference/errors/")
    assert page.status_code == 200
    assert b"quota_exceeded" in b"".join(page.streaming_content)
    stylesheet = next(served.glob("assets/stylesheets/main.*.css")).relative_to(served)
    asset = client.get(f"/docs/{stylesheet.as_posix()}")
    assert (asset.status_code, asset["Content-Type"]) == (200, "text/css")


def test_a_folder_without_its_slash_is_redirected(client, served) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/docs/participants")
    assert (response.status_code, response["Location"]) == (302, "/docs/participants/")


def test_a_missing_page_is_the_site_s_404(client, served) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/docs/no-such-guide/")
    assert response.status_code == 404
    assert b"404" in b"".join(response.streaming_content)


def test_nothing_outside_the_site_is_served(client, served, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (served.parent / "secret.txt").write_text("not documentation")
    for path in ("/docs/../secret.txt", "/docs/%2e%2e/secret.txt", "/docs/..%2fsecret.txt"):
        response = client.get(path)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert b"not documentation" not in body, path


def test_it_says_how_to_build_the_site_where_it_is_not_built(client, settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings.HELDOUT_DOCS_DIR = tmp_path / "site"
    response = client.get("/docs/")
    assert response.status_code == 404
    assert b"make docs" in response.content


def test_it_answers_reads_only(client, served) -> None:  # type: ignore[no-untyped-def]
    assert client.post("/docs/").status_code == 405
