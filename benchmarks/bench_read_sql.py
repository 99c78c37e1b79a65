"""End-to-end read benchmark: local Volt -> websocket -> DataFrame, three ways, same run.

Starts a LocalVolt in a child process (so server and client do not share a
GIL), creates ``bench`` (int, text, real, nullable text, int64) with ``--rows``
rows in the sample database's file, then measures:

(a) the Volt's send rate on its own: a client that only counts frames (it
    decrypts just the last frame of each burst, to notice the end);
(b) the baseline: per-frame decrypt, JSON per row, dict per row, DataFrame
    from dicts (``SqlExecuteJSON`` of our protocol core without batch mode —
    the old client's way);
(c) ``read_sql`` (batch decrypt, columnar decode, ArrowDtype frame).

Prints rows/s, the ratio (c)/(b) and (c)/(a), and the peak memory of (c),
measured as peak RSS growth over the RSS before (c) (sampled every 5 ms from
/proc/self/statm, no tracemalloc overhead), against the final Arrow table's
size. Run: ``python benchmarks/bench_read_sql.py --rows 200000``.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys
import tempfile
import threading
import time

import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run from a checkout without installing

SERVER = r"""
import json, random, sqlite3, sys
from volt_data.local import LocalVolt
rows, protocol, config_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with LocalVolt() as volt:
    sample = volt.load_sample()
    path = volt.services.sqlite.path_for(sample["database_id"])
    db = sqlite3.connect(str(path), isolation_level=None)
    db.execute("DROP TABLE IF EXISTS bench")
    db.execute("CREATE TABLE bench (id INTEGER, label TEXT, value REAL, note TEXT, big INTEGER)")
    rng = random.Random(7)
    db.execute("BEGIN")
    db.executemany("INSERT INTO bench VALUES (?, ?, ?, ?, ?)", (
        (i, f"label-{i % 1000}", rng.random() * 1000, None if i % 3 else f"note {i}", (i * 2654435761) % 2**63)
        for i in range(rows)))
    db.execute("COMMIT")
    db.close()
    with open(config_path, "w") as handle:
        json.dump(volt.client_config(name="bench", protocol=protocol, access="owner"), handle)
    print(sample["database_id"], flush=True)
    sys.stdin.read()
"""

STATEMENT = "SELECT * FROM bench"


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Samples RSS on a thread while the block runs; ``peak`` is the highest seen."""

    def __enter__(self) -> "PeakRSS":
        self.start = self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


async def count_frames(client, database_id: str) -> int:
    """(a): frames of the result, counted as they arrive; only the last of each burst is decrypted."""
    call = await client.aclient.streaming_call(
        "Execute", {"start": {"database_id": database_id, "statement": STATEMENT}}, batch_mode=True
    )
    frames = 0
    session = client.aclient._connection.session
    while True:
        while not call._raw:
            call._item_ready.clear()
            await call._item_ready.wait()
        # Let a few reads pile up, as they do while read_sql decodes: taking every read
        # at once makes both ends work in small pieces and understates the Volt's rate.
        await asyncio.sleep(0.002)
        burst, call._raw = call._raw, []
        frames += len(burst)
        if session.open_batch(call.id, [burst[-1]]).message(0).startswith(b'{"method_end"'):
            call._finish(None)
            return frames - 2  # the header and method_end are frames too


def measure(label: str, function, rows: int) -> float:
    gc.collect()
    started = time.perf_counter()
    result = function()
    elapsed = time.perf_counter() - started
    print(f"{label:<44} {elapsed:8.2f} s  {rows / elapsed:>12,.0f} rows/s")
    return elapsed, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--protocol", choices=("v1", "v2"), default="v2")
    parser.add_argument("--skip-baseline", action="store_true", help="skip (b), which is slow for many rows")
    options = parser.parse_args()

    from volt_data import SyncVoltClient
    from volt_data.data import read_sql

    config_path = tempfile.mktemp(suffix=".json")
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(options.rows), options.protocol, config_path],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    try:
        database_id = server.stdout.readline().strip()
        print(f"{options.rows:,} rows, protocol {options.protocol}, Volt in pid {server.pid}")
        with SyncVoltClient(config_path) as client:
            # Warm-up (not measured): the table's pages into memory, both processes' code paths warm.
            client.run(count_frames(client, database_id))
            time_a, frames = measure("(a) Volt send rate (count frames)", lambda: client.run(count_frames(client, database_id)), options.rows)
            assert frames == options.rows, frames
            with PeakRSS() as memory:
                time_c, frame = measure("(c) read_sql", lambda: read_sql(STATEMENT, database_id, client=client, progress=False), options.rows)
            assert len(frame) == options.rows
            table_bytes = sum(column.array.__arrow_array__().nbytes for _, column in frame.items())
            del frame
            if not options.skip_baseline:
                def baseline() -> pd.DataFrame:
                    rows = client.SqlExecuteJSON({"start": {"database_id": database_id, "statement": STATEMENT}})
                    return pd.DataFrame(rows)

                time_b, old = measure("(b) baseline (frame-by-frame, dict per row)", baseline, options.rows)
                assert len(old) == options.rows
                print(f"read_sql vs baseline: {time_b / time_c:.1f}x faster")
            print(f"read_sql vs the Volt's own send rate: {time_a / time_c:.2f} (1.0 = as fast as the Volt sends)")
            growth = memory.peak - memory.start
            print(
                f"read_sql peak memory (RSS growth): {growth / 2**20:,.1f} MiB; final Arrow table {table_bytes / 2**20:,.1f} MiB"
                f" -> {growth / table_bytes:.2f}x"
            )
    finally:
        server.stdin.close()
        server.wait(30)
        if os.path.exists(config_path):
            os.unlink(config_path)


if __name__ == "__main__":
    main()
