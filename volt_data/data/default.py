"""The module-level default connection that ``read_sql(sql, db)`` uses without ``client=``.

It is the client given to :func:`set_default_client`, or else one opened on
first use from ``$VOLT_CONFIG`` (``volt_data.connect()``). It is a
:class:`~volt_data.client.sync.SyncVoltClient`, so it lives on the shared
background loop and serves sync and async readers alike.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from volt_data.client.api import VoltClient
from volt_data.client.sync import SyncVoltClient

logger = logging.getLogger("volt_data.data.default")

_lock = threading.Lock()
_default: SyncVoltClient | None = None


def set_default_client(client_or_config: Any) -> SyncVoltClient | None:
    """Make ``client_or_config`` the default connection and return it.

    Accepts a :class:`SyncVoltClient`, a config (dict, JSON path, VoltConfig),
    or None to forget the current default (it is not closed: the caller may
    still hold it).
    """
    global _default
    if isinstance(client_or_config, VoltClient):
        raise TypeError("the default client must be a SyncVoltClient or a config, not an async VoltClient")
    if client_or_config is None or isinstance(client_or_config, SyncVoltClient):
        client = client_or_config
    else:
        client = SyncVoltClient(client_or_config)
    with _lock:
        _default = client
    return client


def default_client() -> SyncVoltClient:
    """The default connection, opened from ``$VOLT_CONFIG`` on first use."""
    global _default
    with _lock:
        if _default is None:
            logger.info("opening the default Volt connection from $VOLT_CONFIG")
            _default = SyncVoltClient(None)
        return _default
