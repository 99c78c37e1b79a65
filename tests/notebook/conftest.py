"""A real IPython InteractiveShell with the extension loaded and ``%volt_connect local`` done."""
from __future__ import annotations

import time

import pytest

pytest.importorskip("IPython")
pytest.importorskip("ipywidgets")


@pytest.fixture(scope="session")
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    ipython = InteractiveShell.instance()
    ipython.run_line_magic("load_ext", "volt_data.notebook")
    result = ipython.run_cell("%volt_connect local")
    assert result.error_in_exec is None, result.error_in_exec
    yield ipython
    ipython.run_line_magic("unload_ext", "volt_data.notebook")


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
