"""No URL serves the private root: every stored file of an imported challenge is asked for at
many URL shapes, anonymously and as a member who accepted the terms, and never comes back.
Only the public files download, by their published name, after the terms."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import reverse

from challenges import services
from challenges.bundles import import_challenge
from challenges.models import Challenge, EvaluationSet, PublicFile
from tests.bundles import write_bundle
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def imported(tmp_path: Path, private_root: Path) -> Challenge:
    challenge, _ = import_challenge(write_bundle(tmp_path / "bundle"))
    return challenge


@pytest.fixture
def member(imported: Challenge, dave) -> Client:  # type: ignore[no-untyped-def]
    services.terms_accept(challenge=imported, user=dave)
    TeamFactory(challenge=imported, name="Members", captain=dave)
    client = Client()
    client.force_login(dave)
    return client


def stored_files(private_root: Path) -> dict[str, bytes]:
    files = {p.relative_to(private_root).as_posix(): p.read_bytes()
             for p in private_root.rglob("*") if p.is_file()}
    names = {Path(name).name for name in files}
    assert {"labels.csv", "features.csv", "train.csv"} <= names, names
    return files


def url_shapes(slug: str, relative: str, root: Path) -> list[str]:
    dots = "../../" + relative
    shapes = [
        f"/{relative}", f"/media/{relative}", f"/static/{relative}", f"/private/{relative}",
        f"/var/private/{relative}", f"/challenges/{slug}/files/{relative}",
        f"/challenges/{slug}/files/{dots}", f"/challenges/{slug}/files/{dots.replace('/', '%2f')}",
        f"/challenges/{slug}/files/{dots.replace('../', '%2e%2e%2f')}",
        f"/challenges/{slug}/files/{dots.replace('../', '%2e%2e/')}",
        f"/challenges/{slug}/files/{dots.replace('../', '..%5c')}",
        f"/challenges/{slug}/files/{quote(quote(dots, safe=''), safe='')}",
        f"/challenges/{slug}/files/{root}/{relative}",
        f"/challenges/{slug}/files//{root}/{relative}",
        f"/challenges/{slug}/files/{Path(relative).name}",
        f"/static/../{relative}", f"/media/..%2f{relative}",
    ]
    # The challenge slug in the stored path: evaluation/<slug>/<hash>/labels.csv.
    inner = relative.split("/", 2)[-1]
    shapes += [f"/challenges/{slug}/files/{inner}", f"/challenges/{slug}/{inner}"]
    return shapes


def fetched(client: Client, url: str) -> tuple[int, bytes]:
    response = client.get(url)
    if response.streaming:
        content = b"".join(response.streaming_content)  # consuming it closes the file
    else:
        content = response.content
    return response.status_code, content


def test_no_url_serves_a_stored_file(client, member, imported, private_root) -> None:
    files = stored_files(private_root)
    public = {private_root / p.path for p in PublicFile.objects.all()}
    hidden = {name: data for name, data in files.items() if private_root / name not in public}
    assert any(name.endswith("/labels.csv") for name in hidden)
    assert any(name.endswith("/inputs/features.csv") for name in hidden)

    published = {reverse("challenges:file", args=[imported.slug, p.name])
                 for p in PublicFile.objects.all()}

    leaks, tried = [], 0
    for who, session in (("anonymous", client), ("member", member)):
        for relative in files:
            for url in url_shapes(imported.slug, relative, private_root):
                status, content = fetched(session, url)
                tried += 1
                served = [n for n, data in hidden.items() if data in content]
                if served or (status == 200 and url not in published):
                    leaks.append((who, url, status, served))
    assert leaks == []
    assert tried >= 2 * len(files) * 15


def test_hidden_file_names_are_not_downloadable_as_public_files(member, imported) -> None:
    for name in ("labels.csv", "hidden/labels.csv", "inputs/features.csv",
                 "hidden/inputs/features.csv", "features.csv", "sanity/labels.csv"):
        response = member.get(reverse("challenges:file", args=[imported.slug, name]))
        assert response.status_code == 404, name


def test_a_public_file_downloads_by_its_name_only_after_the_terms(
    client, imported, dave, tmp_path
) -> None:
    public = PublicFile.objects.get(challenge=imported)
    url = reverse("challenges:file", args=[imported.slug, public.name])
    assert public.name == "train.csv"

    assert client.get(url).status_code == 302  # anonymous: to the login page
    client.force_login(dave)
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].endswith("/terms/")

    services.terms_accept(challenge=imported, user=dave)
    status, content = fetched(client, url)

    assert status == 200
    assert content == (tmp_path / "bundle/public/train.csv").read_bytes()


def test_the_hidden_data_records_point_inside_the_private_root(imported, private_root) -> None:
    for data in EvaluationSet.objects.filter(challenge=imported):
        for relative in (data.inputs_dir, data.labels_file):
            path = (private_root / relative).resolve()
            assert private_root.resolve() in path.parents and path.exists()
