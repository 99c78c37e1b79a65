"""The README's first command: ``volt-data demo`` shows sample rows from a fresh local Volt."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_demo_shows_a_dataframe(protocol):
    done = subprocess.run(
        [sys.executable, "-m", "volt_data.cli", "demo", "--rows", "5", "--protocol", protocol],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert re.search(rf"5 rows from 'sample\.readings' over protocol {protocol}", done.stdout)
    assert "int64[pyarrow]" in done.stdout  # lossless Arrow-backed columns, not object
    assert len([line for line in done.stdout.splitlines() if re.match(r"^\d+\s+\d+", line)]) == 5
