"""``%volt_connect`` and ``%%volt_sql``: thin argument parsers over volt_data's public API.

All real work (connecting, reading, typing, cancelling) happens in the library;
this module only turns a magic's line into arguments, binds notebook variables
into the SQL (:mod:`volt_data.notebook.binding`) and shows outcomes
(:mod:`volt_data.notebook.display`).
"""
from __future__ import annotations

import atexit
import logging
import re
import threading
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

import volt_data
from volt_data.notebook.binding import BindingError, bind_parameters, limit_statement
from volt_data.notebook.display import QueryStatus, show_call_error, show_error, summary_text

logger = logging.getLogger("volt_data.notebook.magics")

PREVIEW_ROWS = 10
_DESTINATION = re.compile(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)\s*<<(?=\s|$)")


class NotebookSession:
    """The kernel's connection: the client ``%volt_connect`` made, and a local Volt it started.

    The local Volt lives as long as the kernel (stopped at exit), so re-running
    ``%volt_connect local`` reuses it instead of starting a second server.
    """

    def __init__(self) -> None:
        self.client: Any = None
        self.local_volt: Any = None
        self.sample: dict | None = None
        self.default_database: str | None = None
        self._lock = threading.Lock()

    def local(self) -> Any:
        """The kernel's LocalVolt with the sample loaded, started on first use."""
        with self._lock:
            if self.local_volt is None:
                from volt_data.local import LocalVolt

                volt = LocalVolt()
                volt.start()
                self.sample = volt.load_sample()
                self.local_volt = volt
                atexit.register(self._stop_local)
            return self.local_volt

    def connect(self, target: str | None = None, *, protocol: str = "v2", name: str = "owner") -> Any:
        """Connect to ``"local"``, a config file path, or (None) ``$VOLT_CONFIG``; make it the default."""
        if target == "local":
            volt = self.local()
            client = volt_data.connect(volt.client_config(name=name, protocol=protocol, access="owner"))
            database = self.sample["database_name"] if self.sample else None
        else:
            client = volt_data.connect(target)
            database = None
        old, self.client = self.client, client
        self.default_database = database
        volt_data.set_default_client(client)
        if old is not None and old is not client:
            try:
                old.close()
            except volt_data.VoltError:
                logger.debug("closing the previous client failed", exc_info=True)
        return client

    def _stop_local(self) -> None:
        volt, self.local_volt = self.local_volt, None
        if volt is not None:
            volt.stop()

    def close(self) -> None:
        """Close the client and stop the local Volt (``%unload_ext volt_data``)."""
        client, self.client = self.client, None
        if client is not None:
            try:
                client.close()
            except volt_data.VoltError:
                pass
        self._stop_local()


session = NotebookSession()


def current_client() -> Any:
    """The client ``%volt_connect`` made; a UsageError says how to get one."""
    if session.client is None:
        raise UsageError("not connected: run %volt_connect local (or %volt_connect path/to/config.json) first")
    return session.client


def split_destination(line: str) -> tuple[str | None, str]:
    """``"df << --db x"`` -> ``("df", "--db x")``."""
    match = _DESTINATION.search(line)
    if match is None:
        return None, line
    return match.group(1), (line[: match.start()] + " " + line[match.end():]).strip()


@magics_class
class VoltMagics(Magics):
    """``%volt_connect`` and ``%%volt_sql``."""

    @magic_arguments()
    @argument("target", nargs="?", help="'local', a fusebox config JSON file, or nothing for $VOLT_CONFIG")
    @argument("--protocol", "-p", choices=["v1", "v2"], default="v2", help="protocol generation (local only)")
    @argument("--name", default="owner", help="client identity name (local only)")
    @line_magic
    def volt_connect(self, line: str) -> None:
        """Connect the notebook to a Volt and make it the default for read_sql and %%volt_sql."""
        args = parse_argstring(self.volt_connect, line)
        try:
            client = session.connect(args.target, protocol=args.protocol, name=args.name)
        except volt_data.VoltError as exc:
            show_error("cannot connect", str(exc))
            return
        self.shell.user_ns["volt_client"] = client
        if args.target == "local":
            self.shell.user_ns["volt_sample"] = session.sample
            text = (f"connected to the local Volt as {client.config.client_name} (protocol {args.protocol}); "
                    f"default database: {session.default_database}")
        else:
            text = (f"connected to Volt {client.config.volt_id} as {client.config.client_name} "
                    f"(protocol {client.config.generation})")
        display({"text/plain": text}, raw=True)

    @magic_arguments()
    @argument("destination", nargs="?", help="variable for the DataFrame (or write `df <<`)")
    @argument("--out", "-o", help="variable for the DataFrame")
    @argument("--db", "-d", help="database id or name (default: the sample database of a local Volt)")
    @argument("--limit", "-l", type=int, help="at most N rows: runs SELECT * FROM (<sql>) LIMIT N")
    @argument("--page-size", type=int, help="rows per page the Volt sends")
    @argument("--no-progress", action="store_true", help="no live row count while rows arrive")
    @argument("--quiet", "-q", action="store_true", help="show nothing; only store the result")
    @cell_magic
    def volt_sql(self, line: str, cell: str) -> Any:
        """Run the cell's SQL on a Volt database and return (or store) a DataFrame.

        ``:name`` and ``{name}`` are replaced by notebook variables as SQLite literals.
        """
        destination, rest = split_destination(line)
        args = parse_argstring(self.volt_sql, rest)
        destination = args.out or destination or args.destination
        if destination is not None and not destination.isidentifier():
            raise UsageError(f"{destination!r} is not a valid variable name")
        if args.limit is not None and args.limit < 0:
            raise UsageError("--limit must be zero or more")
        return run_sql_cell(
            self.shell.user_ns, cell,
            database=args.db, destination=destination, limit=args.limit, page_size=args.page_size,
            progress=not args.no_progress, quiet=args.quiet,
        )


def run_sql_cell(
    namespace: dict,
    sql: str,
    *,
    database: str | None = None,
    destination: str | None = None,
    limit: int | None = None,
    page_size: int | None = None,
    progress: bool = True,
    quiet: bool = False,
) -> Any:
    """What ``%%volt_sql`` does, callable without the magic syntax."""
    if not sql.strip():
        raise UsageError("the cell has no SQL")
    try:
        statement = bind_parameters(sql, namespace)
    except BindingError as exc:
        show_error("SQL parameter error", str(exc))
        return None
    if limit is not None:
        statement = limit_statement(statement, limit)
    database = database or session.default_database
    if not database:
        raise UsageError("which database? pass --db NAME (or connect with %volt_connect local for the sample)")
    status = QueryStatus(database, show=not quiet)
    try:
        frame = volt_data.read_sql(
            statement, database, client=session.client, page_size=page_size,
            progress=status.progress if progress and not quiet else False,
        )
    except volt_data.CallError as exc:
        status.finish(f"failed after {status.elapsed:.2f} s", "#c0392b")
        show_call_error(exc)
        return None
    except (volt_data.CallCancelledError, KeyboardInterrupt):
        status.finish(f"cancelled after {status.elapsed:.2f} s; the query was stopped on the Volt", "#c0392b")
        if quiet:
            show_error("cancelled", "the query was stopped on the Volt")
        return None
    except volt_data.VoltError as exc:
        status.finish(f"failed after {status.elapsed:.2f} s", "#c0392b")
        show_error(type(exc).__name__, str(exc))
        return None
    status.finish(summary_text(len(frame), len(frame.columns), status.elapsed, database))
    if destination is None:
        return frame
    namespace[destination] = frame
    if not quiet:
        display(frame.head(PREVIEW_ROWS))
    return None
