"""The notebook layer: ``%load_ext volt_data``, ``%volt_connect``, ``%%volt_sql`` and live wire widgets.

Everything here calls volt_data's public API only; ``volt_data/__init__.py``
forwards ``load_ipython_extension`` to this package so ``%load_ext volt_data``
works.
"""
from __future__ import annotations

from typing import Any

from volt_data.notebook.binding import BindingError, bind_parameters, sqlite_literal


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics and the hook that stops a cell's live widgets when it runs again."""
    from volt_data.notebook.magics import VoltMagics
    from volt_data.notebook.widgets import install_rerun_hook

    ipython.register_magics(VoltMagics)
    install_rerun_hook(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Stop live feeds, close the notebook's client and its local Volt."""
    from volt_data.notebook.magics import session
    from volt_data.notebook.widgets import uninstall_rerun_hook

    uninstall_rerun_hook(ipython)
    session.close()


def __getattr__(name: str) -> Any:  # widgets need ipywidgets/bqplot: import them on first use
    if name in ("LiveTable", "LivePlot", "WireFeed", "watch_wire", "live_feeds"):
        from volt_data.notebook import widgets

        return getattr(widgets, name)
    raise AttributeError(f"module 'volt_data.notebook' has no attribute {name!r}")


__all__ = [
    "BindingError",
    "LivePlot",
    "LiveTable",
    "WireFeed",
    "bind_parameters",
    "live_feeds",
    "load_ipython_extension",
    "sqlite_literal",
    "unload_ipython_extension",
    "watch_wire",
]
