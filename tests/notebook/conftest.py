"""A real IPython InteractiveShell with the extension loaded and ``%volt_connect local`` done."""
from __future__ import annotations

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
