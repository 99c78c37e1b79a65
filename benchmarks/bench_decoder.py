"""Execute result decoding: the old client's way against batch decryption + ExecuteDecoder.

Run from the repository root::

    python benchmarks/bench_decoder.py --rows 200000

For each protocol generation it times, in the same process and on the same
frames, (a) the baseline: per-frame JSON parse, a new AES cipher per frame, two
``json.loads`` per row, a dict per row and ``pandas.DataFrame(list_of_dicts)``;
and (b) ours, the client's own path: frames in batches of ``BATCH_FRAMES`` as a
call hands them over, each opened by :mod:`volt_data.protocol.batch_open`
(plaintexts left in one buffer), :class:`ExecuteDecoder` (its vectorised row
scan), then ``to_pandas(types_mapper=pd.ArrowDtype)``. It prints rows/s (wall and CPU) and
the ratio, and asserts both produce the same values.
"""
from __future__ import annotations

import argparse
import base64
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd  # noqa: E402
from cryptography.hazmat.primitives import padding  # noqa: E402
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: E402
from frames import Recording, load_frames, save_frames, synthesise, table_rows  # noqa: E402

from volt_data.data.decoder import ExecuteDecoder  # noqa: E402
from volt_data.protocol.batch_open import BATCH_FRAMES, open_v1_frames, open_v2_frames  # noqa: E402

CALL_ID = 1  # the call id frames.synthesise() uses

# -- baseline: what the 0.1.14-style client does, frame by frame -------------------------


def _baseline_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def _baseline_rows(plaintexts: list[bytes]) -> pd.DataFrame:
    names: list[str] = []
    rows = []
    for plaintext in plaintexts:
        inner = json.loads(plaintext)
        response = json.loads(inner["method_payload"]["json_payload"])
        if "header" in response:
            names = [column["name"] for column in response["header"]["column"]]
            continue
        row = {}
        for name, cell in zip(names, response["row"]["column"]):
            if "integer" in cell:
                row[name] = int(cell["integer"])
            elif "real" in cell:
                row[name] = float(cell["real"])
            elif "text" in cell:
                row[name] = cell["text"]
            elif "blob" in cell:
                row[name] = base64.b64decode(cell["blob"])
            else:
                row[name] = None
        rows.append(row)
    return pd.DataFrame(rows)


def baseline_v1(recording: Recording) -> pd.DataFrame:
    """Per frame: json.loads, base64, a new cipher; then per row dicts."""
    plaintexts = []
    for frame in recording.v1_texts:
        message = json.loads(frame)
        ciphertext = base64.b64decode(message["json_payload"])
        plaintexts.append(_baseline_decrypt(recording.key, recording.v1_iv, ciphertext))
    return _baseline_rows(plaintexts)


def baseline_v2(recording: Recording) -> pd.DataFrame:
    """Per frame: slice IV and ciphertext, a new cipher; then per row dicts."""
    plaintexts = []
    for frame in recording.v2_frames:
        metadata_size = int.from_bytes(frame[10:12], "big")
        start = 12 + metadata_size
        iv_size = frame[start]
        iv = frame[start + 1 : start + 1 + iv_size]
        plaintexts.append(_baseline_decrypt(recording.key, iv, frame[start + 1 + iv_size :]))
    return _baseline_rows(plaintexts)


# -- ours ---------------------------------------------------------------------------------


def _decode(batches) -> pd.DataFrame:
    """The client's path from opened batches on: the decoder, then one ArrowDtype frame."""
    decoder = ExecuteDecoder()
    record_batches = []
    rows = 0
    for batch in batches:
        rows += len(batch)
        record_batches.extend(decoder.feed(batch))
    record_batches.extend(decoder.finish())
    assert decoder.scanned_rows == rows - 1, "the vectorised scan did not take every row"
    return decoder.unify(record_batches).to_pandas(types_mapper=pd.ArrowDtype)


def _in_batches(frames: list) -> list[list]:
    """The frames as a call hands them to the decoder: at most BATCH_FRAMES at a time."""
    return [frames[start : start + BATCH_FRAMES] for start in range(0, len(frames), BATCH_FRAMES)]


def _no_fallback(frame):
    raise AssertionError("a recorded frame took the general path")


def ours_v1(recording: Recording) -> pd.DataFrame:
    """open_v1_frames per batch (prefix check, one base64 decode, one CBC pass), then the row scan."""
    key, iv = recording.key, recording.v1_iv
    return _decode(open_v1_frames(key, iv, CALL_ID, frames, _no_fallback) for frames in _in_batches(recording.v1_frames))


def ours_v2(recording: Recording) -> pd.DataFrame:
    """open_v2_frames per batch (head check, one CBC pass), then the row scan."""
    return _decode(open_v2_frames(recording.key, frames, _no_fallback) for frames in _in_batches(recording.v2_frames))


# -- checking and timing ------------------------------------------------------------------


def _normalised(frame: pd.DataFrame) -> dict[str, list]:
    def value(item: object) -> object:
        if item is None or item is pd.NA or (isinstance(item, float) and math.isnan(item)):
            return None
        return item.item() if hasattr(item, "item") else item

    return {name: [value(item) for item in frame[name].tolist()] for name in frame.columns}


def check_same(baseline: pd.DataFrame, ours: pd.DataFrame, rows: list[tuple]) -> None:
    """Both paths must give the table's true values (int64 extremes exact)."""
    names = ["id", "name", "score", "note", "big"]
    expected = {name: [row[i] for row in rows] for i, name in enumerate(names)}
    assert _normalised(ours) == expected, "ours differs from the synthesised table"
    assert _normalised(baseline) == expected, "baseline differs from the synthesised table"


def best_time(function, argument, repeat: int) -> tuple[float, float, object]:
    """Best wall-clock and best CPU seconds over ``repeat`` runs, and the last result.

    CPU time (all threads of this process) is reported too because a shared
    machine's load inflates wall time; Arrow's reader may use both cores, which
    CPU time counts against us.
    """
    best_wall = best_cpu = math.inf
    result = None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function(argument)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs for each path")
    parser.add_argument("--recording", type=Path, help="load frames from / save frames to this file")
    args = parser.parse_args(argv)

    rows = table_rows(args.rows)
    if args.recording and args.recording.exists():
        recording = load_frames(args.recording)
    else:
        started = time.perf_counter()
        recording = synthesise(rows)
        print(f"synthesised {args.rows:,} rows of frames in {time.perf_counter() - started:.1f} s")
        if args.recording:
            save_frames(args.recording, recording)
    # The baseline gets text frames as websockets delivers them (str); our client
    # routes a v1 result's frames undecoded (bytes), as recorded.
    recording.v1_texts = [frame.decode() for frame in recording.v1_frames]

    print(f"{'generation':<10} {'clock':<5} {'baseline rows/s':>16} {'ours rows/s':>14} {'ratio':>7}")
    for generation, baseline, ours in (("v1", baseline_v1, ours_v1), ("v2", baseline_v2, ours_v2)):
        baseline_wall, baseline_cpu, baseline_frame = best_time(baseline, recording, args.repeat)
        ours_wall, ours_cpu, ours_frame = best_time(ours, recording, args.repeat)
        check_same(baseline_frame, ours_frame, rows)
        clocks = (("wall", baseline_wall, ours_wall), ("cpu", baseline_cpu, ours_cpu))
        for clock, baseline_seconds, ours_seconds in clocks:
            print(
                f"{generation:<10} {clock:<5} {args.rows / baseline_seconds:>16,.0f}"
                f" {args.rows / ours_seconds:>14,.0f} {baseline_seconds / ours_seconds:>6.1f}x"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
