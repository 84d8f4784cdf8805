"""Per-case arrays as stored in Result rows: numpy's .npy format, never pickles."""

from __future__ import annotations

import io

import numpy as np


def to_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def from_bytes(blob: bytes | memoryview) -> np.ndarray:
    return np.load(io.BytesIO(bytes(blob)), allow_pickle=False)
