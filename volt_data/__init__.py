"""volt_data: your tdx Volt data in Python, pandas and Jupyter.

Public names only; see the README for a tour.
"""
from __future__ import annotations

from volt_data.client import Call, VoltClient
from volt_data.client.sync import SyncCall, SyncVoltClient
from volt_data.config import VoltConfig, load_config
from volt_data.data import (
    aiter_batches,
    iter_batches,
    read_sql,
    read_sql_arrow,
    read_sql_arrow_async,
    read_sql_async,
    set_default_client,
    to_volt,
    to_volt_async,
)
from volt_data.errors import (
    CallCancelledError,
    CallError,
    CallTimeoutError,
    ConfigError,
    ConnectionLostError,
    PassphraseError,
    ProtocolError,
    RequestError,
    VoltError,
)

__version__ = "0.1.0"


def connect(config=None, *, passphrase=None, timeout=None, **options) -> SyncVoltClient:
    """Connect to a Volt and return a blocking client (scripts, notebooks)."""
    return SyncVoltClient(config, passphrase=passphrase, timeout=timeout, **options)


async def connect_async(config=None, *, passphrase=None, timeout=None, **options) -> VoltClient:
    """Connect to a Volt and return an initialised async client."""
    client = VoltClient(config, passphrase=passphrase, timeout=timeout, **options)
    await client.initialise()
    return client


def load_ipython_extension(ipython) -> None:
    """``%load_ext volt_data``: register the %volt_connect and %%volt_sql magics."""
    from volt_data.notebook import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython) -> None:
    from volt_data.notebook import unload_ipython_extension as unload

    unload(ipython)


__all__ = [
    "Call",
    "CallCancelledError",
    "CallError",
    "CallTimeoutError",
    "ConfigError",
    "ConnectionLostError",
    "PassphraseError",
    "ProtocolError",
    "RequestError",
    "SyncCall",
    "SyncVoltClient",
    "VoltClient",
    "VoltConfig",
    "VoltError",
    "aiter_batches",
    "connect",
    "connect_async",
    "iter_batches",
    "load_config",
    "read_sql",
    "read_sql_arrow",
    "read_sql_arrow_async",
    "read_sql_async",
    "set_default_client",
    "to_volt",
    "to_volt_async",
]
