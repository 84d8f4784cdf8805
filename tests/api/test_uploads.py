"""Resumable chunked uploads through the API: start, send chunks at the server's offset,
resume after a refused chunk, finish into a submission (once)."""

from __future__ import annotations

from challenges.models import Phase
from core.storage import private_path
from submissions.models import Submission
from tests.api.conftest import close, v1

CONTENT = b"id,score\n" + b"".join(b"c%04d,0.%d\n" % (i, i % 10) for i in range(200))
START = v1("challenges/readmission/phases/leaderboard/uploads/")


def start(client, size: int = len(CONTENT), kind: str = "predictions"):  # type: ignore[no-untyped-def]
    return client.post(START, {"kind": kind, "filename": "../preds.csv", "size": size},
                       format="json")


def put(client, upload: str, offset: int, data: bytes):  # type: ignore[no-untyped-def]
    return client.put(v1(f"uploads/{upload}/?offset={offset}"), data,
                      content_type="application/octet-stream")


def test_it_assembles_chunks_into_one_submission(api, alice, phase, team_a):  # type: ignore[no-untyped-def]
    client = api(alice)
    session = start(client).json()
    assert (session["received"], session["size"], session["submission"]) == (0, len(CONTENT), None)
    upload, half = session["id"], len(CONTENT) // 2
    assert put(client, upload, 0, CONTENT[:half]).json()["received"] == half
    assert client.get(v1(f"uploads/{upload}/")).json()["received"] == half
    assert put(client, upload, half, CONTENT[half:]).json()["received"] == len(CONTENT)
    finished = client.post(v1(f"uploads/{upload}/finish/"))
    assert finished.status_code == 202, finished.content
    submission = Submission.objects.get(uid=finished.json()["id"])
    assert private_path(submission.file_path).read_bytes() == CONTENT
    assert submission.filename == "preds.csv"
    again = client.post(v1(f"uploads/{upload}/finish/"))
    assert again.json()["id"] == finished.json()["id"]
    assert client.get(v1(f"uploads/{upload}/")).json()["submission"] == str(submission.uid)
    assert Submission.objects.count() == 1


def test_it_says_where_to_resume_after_a_chunk_at_the_wrong_offset(api, alice, phase, team_a):  # type: ignore[no-untyped-def]
    client = api(alice)
    upload = start(client).json()["id"]
    put(client, upload, 0, CONTENT[:100])
    response = put(client, upload, 50, CONTENT[50:150])
    assert response.status_code == 409
    assert response.json() == {
        "code": "invalid_upload", "detail": "Resume from byte 100, not 50.",
        "received": 100, "size": len(CONTENT)}
    assert put(client, upload, 100, CONTENT[100:]).json()["received"] == len(CONTENT)


def test_it_refuses_more_bytes_than_declared(api, alice, phase, team_a):  # type: ignore[no-untyped-def]
    client = api(alice)
    upload = start(client, size=10).json()["id"]
    response = put(client, upload, 0, CONTENT)
    assert (response.status_code, response.json()["received"]) == (409, 0)


def test_it_refuses_to_finish_an_incomplete_upload(api, alice, phase, team_a):  # type: ignore[no-untyped-def]
    client = api(alice)
    upload = start(client).json()["id"]
    put(client, upload, 0, CONTENT[:10])
    response = client.post(v1(f"uploads/{upload}/finish/"))
    assert (response.status_code, response.json()["code"]) == (400, "invalid_upload")
    assert "incomplete" in response.json()["detail"]


def test_it_refuses_a_bad_offset(api, alice, phase, team_a):  # type: ignore[no-untyped-def]
    client = api(alice)
    upload = start(client).json()["id"]
    response = client.put(v1(f"uploads/{upload}/?offset=minus"), b"x",
                          content_type="application/octet-stream")
    assert (response.status_code, response.json()["code"]) == (400, "invalid_input")
    assert "offset" in response.json()["errors"]


def test_it_refuses_to_start_what_the_phase_would_refuse(api, alice, phase, team_a):  # type: ignore[no-untyped-def]
    client = api(alice)
    too_big = start(client, size=10 * 1024**4)
    assert (too_big.status_code, too_big.json()["code"]) == (400, "invalid_upload")
    Phase.objects.filter(pk=phase.pk).update(submission_kinds=["bundle"])
    assert start(client).json()["code"] == "kind_not_allowed"
    close(phase)
    assert start(client, kind="bundle").json()["code"] == "phase_closed"


def test_it_keeps_each_users_uploads_to_themselves(api, alice, bob, phase, team_a):  # type: ignore[no-untyped-def]
    upload = start(api(alice)).json()["id"]
    assert api(bob).get(v1(f"uploads/{upload}/")).status_code == 404
    assert put(api(bob), upload, 0, b"x").status_code == 404
