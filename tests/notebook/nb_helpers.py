"""Helpers of the notebook tests (a unique module name: tests/conftest.py is also "conftest")."""
from __future__ import annotations

import time


def run(shell, code: str):
    """Run a cell, capturing its rich outputs; return (ExecutionResult, [text/plain of each output])."""
    from IPython.utils.capture import capture_output

    with capture_output() as captured:
        result = shell.run_cell(code)
    texts = [output.data.get("text/plain", "") for output in captured.outputs]
    return result, texts, captured


def open_calls(client) -> int:
    """How many calls the client's connection still holds open."""
    return client.aclient._connection.open_calls


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
