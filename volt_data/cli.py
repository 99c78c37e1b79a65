"""The ``volt-data`` command: run and administer a local Volt from a shell.

One function per subcommand (``cmd_<name>``), each registered by
:func:`build_parser`; a new subcommand adds a parser in ``_SUBCOMMANDS`` and its
function, nothing else. Output meant for scripts is one line per fact
(``config: <path>``), printed to stdout.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import pathlib
import signal
import sys
from typing import Callable, Optional, Sequence

__all__ = ["build_parser", "default_data_dir", "main"]

#: The port ``serve`` listens on unless told otherwise, so configs stay valid
#: across restarts (the docs' example Volt uses 52992 for its HTTP listener).
DEFAULT_PORT = 52992


def default_data_dir() -> pathlib.Path:
    """``$VOLT_DATA_DIR``, else ``~/.local/share/volt-data/volt``."""
    configured = os.environ.get("VOLT_DATA_DIR")
    if configured:
        return pathlib.Path(configured).expanduser()
    return pathlib.Path.home() / ".local" / "share" / "volt-data" / "volt"


def _data_dir(args: argparse.Namespace) -> pathlib.Path:
    return pathlib.Path(args.data_dir).expanduser() if args.data_dir else default_data_dir()


def _passphrase(args: argparse.Namespace) -> Optional[str]:
    variable = getattr(args, "passphrase_env", None)
    if not variable:
        return None
    value = os.environ.get(variable)
    if not value:
        raise SystemExit(f"volt-data: environment variable {variable} is not set or empty")
    return value


# ---------------------------------------------------------------- subcommands


def cmd_init(args: argparse.Namespace) -> int:
    """Create (or load) the Volt's identity, keys and CA in the data directory."""
    from volt_data.local.state import VoltState

    state = VoltState(_data_dir(args))
    print(f"volt: {state.volt_id}")
    print(f"data: {state.data_dir}")
    return 0


def cmd_add_client(args: argparse.Namespace) -> int:
    """Register a client identity and write its config file (mode 0600)."""
    from volt_data.local.services import VoltServices
    from volt_data.local.state import VoltState
    from volt_data.local.tls import write_private_text

    state = VoltState(_data_dir(args))
    try:
        record = state.register(args.name, args.access)
    except ValueError as exc:
        raise SystemExit(f"volt-data: {exc}") from None
    services = VoltServices(state.data_dir, state.volt_id)
    try:
        services.ensure_home(record.identity())
    finally:
        asyncio.run(services.close())
    address = args.http_address or state.last_http_address or f"http://127.0.0.1:{DEFAULT_PORT}"
    config = state.client_config(
        record, protocol=args.protocol, http_address=address, passphrase=_passphrase(args)
    )
    path = pathlib.Path(args.output or state.data_dir / "clients" / f"{args.name}-{args.protocol}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private_text(path, json.dumps(config, indent=2) + "\n")
    print(path)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; prints ``config: <path>`` once clients can connect."""
    return asyncio.run(_serve(args))


async def _serve(args: argparse.Namespace) -> int:
    from volt_data.local import LocalVolt

    data_dir = _data_dir(args)
    port = args.port
    volt = LocalVolt(data_dir, host=args.host, port=DEFAULT_PORT if port is None else port, tls=args.tls)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    async with volt:
        volt.state.remember_address(volt.http_address)
        if args.sample:
            volt.load_sample()
        config_path = pathlib.Path(args.config_out or data_dir / "clients" / "owner-v2.json")
        config_path.parent.mkdir(parents=True, exist_ok=True)
        volt.write_client_config(config_path, name="owner", protocol="v2", access="owner")
        print(f"serving: {volt.http_address}", flush=True)
        print(f"config: {config_path}", flush=True)
        await stop.wait()
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    """Create the sample database and wire in the owner's home; prints their ids as JSON."""
    from volt_data.local.services import VoltServices
    from volt_data.local.state import VoltState

    state = VoltState(_data_dir(args))
    owner = state.register("owner", "owner")

    async def load() -> dict:
        services = VoltServices(state.data_dir, state.volt_id)
        try:
            return services.load_sample(owner.identity())
        finally:
            await services.close()

    info = asyncio.run(load())
    info.pop("publishing", None)  # nothing publishes once this command exits
    print(json.dumps(info, indent=2))
    return 0


# ---------------------------------------------------------------- parser


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="the Volt's data directory (default: $VOLT_DATA_DIR or "
                        "~/.local/share/volt-data/volt)")


def _init_parser(parser: argparse.ArgumentParser) -> None:
    _add_data_dir(parser)


def _add_client_parser(parser: argparse.ArgumentParser) -> None:
    _add_data_dir(parser)
    parser.add_argument("name", help="the client identity's name (reused if it exists)")
    parser.add_argument("--access", choices=["owner", "read", "write"], default="owner")
    parser.add_argument("--protocol", choices=["v1", "v2"], default="v2",
                        help="v1: RSA keys for volt_client_web 0.1.x; v2: Ed25519 (default)")
    parser.add_argument("--passphrase-env", metavar="VAR",
                        help="encrypt the private key with the passphrase in this environment variable")
    parser.add_argument("--http-address", help="address to put in the config (default: where the "
                        "Volt last served, else http://127.0.0.1:52992)")
    parser.add_argument("-o", "--output", metavar="FILE", help="config file to write")


def _serve_parser(parser: argparse.ArgumentParser) -> None:
    _add_data_dir(parser)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None, help=f"0 picks a free port (default {DEFAULT_PORT})")
    parser.add_argument("--tls", action="store_true", help="serve wss:// with the Volt's own CA")
    parser.add_argument("--sample", action=argparse.BooleanOptionalAction, default=True,
                        help="load the sample database and wire (default: yes)")
    parser.add_argument("--config-out", metavar="FILE", help="where to write the owner's v2 config")


def _sample_parser(parser: argparse.ArgumentParser) -> None:
    _add_data_dir(parser)


def _demo_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=10, help="how many rows to show")
    parser.add_argument("--protocol", choices=["v1", "v2"], default="v2")


def cmd_demo(args: argparse.Namespace) -> int:
    from volt_data.demo import run_demo

    return run_demo(rows=args.rows, protocol=args.protocol)


def _sql_parser(parser: argparse.ArgumentParser) -> None:
    from volt_data.data import cli_sql

    cli_sql.configure_parser(parser)


def cmd_sql(args: argparse.Namespace) -> int:
    from volt_data.data import cli_sql

    return cli_sql.run(args)


_SUBCOMMANDS: dict[str, tuple[Callable, Callable[[argparse.Namespace], int], str]] = {
    "demo": (_demo_parser, cmd_demo, "start a local Volt, load the sample data and show a query result"),
    "sql": (_sql_parser, cmd_sql, "run a SQL statement on a Volt database and print or export the result"),
    "init": (_init_parser, cmd_init, "create the local Volt's identity and keys"),
    "add-client": (_add_client_parser, cmd_add_client, "register a client and write its config"),
    "serve": (_serve_parser, cmd_serve, "run the local Volt"),
    "sample": (_sample_parser, cmd_sample, "load the sample database and wire"),
}


def build_parser() -> argparse.ArgumentParser:
    """The ``volt-data`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="volt-data", description="Run and manage a local tdx Volt.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (configure, function, help_text) in _SUBCOMMANDS.items():
        subparser = commands.add_parser(name, help=help_text, description=help_text)
        configure(subparser)
        subparser.set_defaults(handler=function)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``volt-data`` console script."""
    args = build_parser().parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
