"""Synthesised ``Execute`` result frames, as a Volt would send them, for benchmarks.

The table has five columns chosen to exercise the decoder: an integer key, text,
a real, a nullable text column and int64 values near both extremes. Frames come
in both protocol generations (reference §3.3 and §4.3): v1 JSON text frames with
base64 ciphertext under one key and IV, and v2 binary frames with a fresh IV
per frame. :func:`save_frames` / :func:`load_frames` keep a recording on disk so
repeated runs need not re-encrypt.
"""
from __future__ import annotations

import base64
import json
import os
import random
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson

from volt_data.protocol.batch_cipher import encrypt_cbc

HEADER = {
    "header": {
        "column": [
            {"name": "id", "type": "DATA_TYPE_INTEGER"},
            {"name": "name", "type": "DATA_TYPE_TEXT"},
            {"name": "score", "type": "DATA_TYPE_REAL"},
            {"name": "note", "type": "DATA_TYPE_TEXT"},
            {"name": "big", "type": "DATA_TYPE_INTEGER"},
        ]
    }
}
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def table_rows(count: int, seed: int = 7) -> list[tuple]:
    """The Python values of the synthetic table (the ground truth both decoders must reproduce)."""
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "délta", "ε", "", "zeta eta", "théta"]
    rows = []
    for index in range(count):
        note = None if index % 3 == 0 else f"note {rng.choice(words)} {index}"
        big = INT64_MAX - rng.randrange(1000) if index % 2 else INT64_MIN + rng.randrange(1000)
        rows.append((index, f"{rng.choice(words)}-{index}", rng.uniform(-1e6, 1e6), note, big))
    return rows


def row_response(row: tuple) -> dict:
    """One ``row`` response in proto3 JSON (int64 as decimal strings)."""
    index, name, score, note, big = row
    return {
        "row": {
            "column": [
                {"integer": str(index)},
                {"text": name},
                {"real": score},
                {"null": True} if note is None else {"text": note},
                {"integer": str(big)},
            ]
        }
    }


def inner_envelopes(rows: Iterable[tuple]) -> list[bytes]:
    """The decrypted inner envelopes: the header response, then one per row (compact JSON)."""
    responses = [HEADER] + [row_response(row) for row in rows]
    return [orjson.dumps({"method_payload": {"json_payload": orjson.dumps(r).decode()}}) for r in responses]


@dataclass
class Recording:
    """Frames of one call in both generations, with the secrets needed to read them."""

    key: bytes
    v1_iv: bytes
    v1_frames: list[bytes]  # websocket text frames, UTF-8
    v2_frames: list[bytes]  # websocket binary frames


def synthesise(rows: list[tuple], call_id: int = 1) -> Recording:
    """Encrypt the table's envelopes into v1 and v2 frames."""
    key = os.urandom(32)
    v1_iv = os.urandom(16)
    v1_frames = []
    v2_frames = []
    v2_preamble = bytes([1, 3]) + call_id.to_bytes(8, "big") + (0).to_bytes(2, "big") + bytes([16])
    for inner in inner_envelopes(rows):
        ciphertext = base64.b64encode(encrypt_cbc(key, v1_iv, inner)).decode("ascii")
        # json.dumps spacing, as the Python reference server writes it.
        v1_frames.append(json.dumps({"invoke_id": call_id, "json_payload": ciphertext}).encode())
        iv = os.urandom(16)
        v2_frames.append(v2_preamble + iv + encrypt_cbc(key, iv, inner))
    return Recording(key, v1_iv, v1_frames, v2_frames)


def save_frames(path: Path, recording: Recording) -> None:
    """Write a recording as length-prefixed records: key, v1 IV, then both frame lists."""
    with open(path, "wb") as out:
        for blob in (recording.key, recording.v1_iv):
            out.write(struct.pack(">I", len(blob)) + blob)
        for frames in (recording.v1_frames, recording.v2_frames):
            out.write(struct.pack(">I", len(frames)))
            for frame in frames:
                out.write(struct.pack(">I", len(frame)) + frame)


def load_frames(path: Path) -> Recording:
    """Read a recording written by :func:`save_frames`."""
    data = memoryview(Path(path).read_bytes())
    position = 0

    def take() -> bytes:
        nonlocal position
        (size,) = struct.unpack_from(">I", data, position)
        position += 4 + size
        return bytes(data[position - size : position])

    key, v1_iv = take(), take()
    lists = []
    for _ in range(2):
        (count,) = struct.unpack_from(">I", data, position)
        position += 4
        lists.append([take() for _ in range(count)])
    return Recording(key, v1_iv, lists[0], lists[1])
