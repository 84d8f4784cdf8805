"""Datasets and their fingerprints: what a station says about its data, and no more."""

from __future__ import annotations

import hashlib
import os

from heldout_station.datasets import FileHasher, discover, fingerprint, unreadable_inputs


def _expected_sha(root) -> str:
    lines = sorted(
        f"{p.relative_to(root).as_posix()} {hashlib.sha256(p.read_bytes()).hexdigest()}\n"
        for p in root.rglob("*") if p.is_file())
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def test_it_fingerprints_each_visible_dataset(hidden):
    datasets = discover(hidden.root)
    assert list(datasets) == ["north"], "hidden folders are not datasets"
    printed = fingerprint(datasets["north"], FileHasher())
    assert printed == {
        "sha256": _expected_sha(hidden.root / "north"), "files": 2, "n_cases": 40,
        "n_positive": sum(hidden.labels.values()), "n_lesions": None,
        "parts": {"public": 20, "private": 20},
    }


def test_its_fingerprint_follows_a_changed_file(hidden):
    dataset = discover(hidden.root)["north"]
    hasher = FileHasher()
    before = fingerprint(dataset, hasher)["sha256"]
    features = dataset.inputs / "features.csv"
    stat = features.stat()
    features.write_text(features.read_text().replace("_000,20", "_000,21", 1))
    os.utime(features, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    after = fingerprint(dataset, hasher)["sha256"]
    assert after != before and after == _expected_sha(dataset.root)


def test_it_names_inputs_the_sandbox_user_cannot_read(hidden):
    dataset = discover(hidden.root)["north"]
    assert unreadable_inputs(dataset) == []
    (dataset.inputs / "features.csv").chmod(0o600)
    assert unreadable_inputs(dataset) == ["inputs/features.csv"]
