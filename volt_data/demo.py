"""The README's first command: a local Volt, the sample data, a DataFrame.

``volt-data demo`` (or ``python -m volt_data.demo``) needs no account and no
network: it starts a local Volt on a free loopback port, loads the sample
database, and reads it back through the real client over a real websocket.
"""
from __future__ import annotations

import sys
import time


def run_demo(rows: int = 10, protocol: str = "v2") -> int:
    import pandas as pd

    import volt_data
    from volt_data.local import LocalVolt

    with LocalVolt() as volt:
        sample = volt.load_sample()
        print(f"local Volt {volt.state.volt_id} listening on {volt.http_address}")
        with volt_data.connect(volt.client_config(protocol=protocol)) as client:
            started = time.perf_counter()
            frame = volt_data.read_sql(
                f"SELECT * FROM {sample['table']} ORDER BY 1 LIMIT {rows}",
                sample["database_name"],
                client=client,
                progress=False,
            )
            elapsed = time.perf_counter() - started
            with pd.option_context("display.width", 120, "display.max_columns", 12):
                print(frame)
            print(f"\n{len(frame)} rows from '{sample['database_name']}.{sample['table']}' "
                  f"over protocol {protocol} in {elapsed * 1000:.0f} ms")
            print("dtypes:", ", ".join(f"{name}: {dtype}" for name, dtype in frame.dtypes.items()))
    return 0


if __name__ == "__main__":
    sys.exit(run_demo())
