"""`docschat ...`: the command line of the service, the worker, setup, scraping and the demo.

The commands that build the service (`serve`, `worker`, `setup`, `demo`) import it when they run,
not at the top: it pulls in the openai SDK and the whole service. Measured on the development
machine, `docschat --help` took 1.3 s with those imports at the top and 0.65 s without (the
openai SDK alone is about 0.4 s). Every other import is at the top.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from emulator.options import EmulatorOptions
from emulator.server import serve as serve_emulator
from proxy import metrics_dir
from proxy.cli.report import add_report_arguments, run_report
from proxy.cli.scrape import (
    add_docs_arguments,
    add_scrape_arguments,
    run_docs,
    run_scrape,
    run_sources,
)
from proxy.config import (
    SettingError,
    Settings,
    listing,
    normalize_database_url,
    unknown_variables,
)
from proxy.documents import llms
from proxy.logs import configure
from proxy.storage.db import Database

log = logging.getLogger("docschat")


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    # Before the app's modules load prometheus-client; gunicorn's worker inherits the directory.
    metrics_dir.share(settings)
    from proxy.web.app import create_app  # measured: see the module docstring
    from proxy.web.server import Server, web_options

    port = settings.port if args.port is None else args.port
    options = web_options(settings, bind=_bind(args.host, port), workers=1)
    options["post_worker_init"] = partial(_serving, settings, args.host)
    Server(lambda: create_app(settings, with_worker=settings.run_worker), options).run()
    return 0


def _bind(host: str, port: int) -> str:
    """gunicorn's address form: an IPv6 host goes in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _serving(settings: Settings, host: str, worker: Any) -> None:
    """Say where the server listens once its worker is ready (the real port when 0 was asked)."""
    port = worker.sockets[0].getsockname()[1]
    _ready(settings, f"docschat serving on http://{host}:{port}/")


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    metrics_dir.share(settings)  # before the service's modules load prometheus-client
    from proxy.services import build  # measured: see the module docstring

    services = build(settings, with_worker=True, readers=False)  # warmed up when it returns
    _ready(settings, "docschat worker running")
    done = threading.Event()

    def stop(_signum: int, _frame: object) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    done.wait()
    services.close()
    return 0


def _ready(settings: Settings, line: str) -> None:
    """Say that the process is ready: a log line in JSON mode (every line is JSON), else a
    printed line."""
    if settings.log_json:
        log.info(line)
    else:
        print(line, flush=True)


def _setup(args: argparse.Namespace, settings: Settings) -> int:
    from proxy.setup import run_setup  # measured: see the module docstring

    db = Database(settings.database_url)
    db.upgrade()
    done = run_setup(settings, db)
    print(f"api: {done.api}")
    print(f"vector store: {done.vector_store_id}")
    if done.assistant_id:
        print(f"assistant: {done.assistant_id}")
    print("\n".join(done.changes) if done.changes else "nothing to change")
    return 0


def _db(args: argparse.Namespace, settings: Settings) -> int:
    Database(settings.database_url).upgrade()
    print("database is up to date")
    return 0


def _emulator(args: argparse.Namespace, settings: Settings) -> int:
    options = EmulatorOptions(
        latency_ms=args.latency_ms,
        tokens_per_second=args.tokens_per_second,
        fail_rate=args.fail_rate,
        api=args.api,
    )
    print(f"emulator on http://{args.host}:{args.port}/v1", flush=True)
    serve_emulator(options, args.host, args.port)
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from proxy.cli.demo import run_demo  # measured: see the module docstring

    return run_demo(args.host, args.port, args.database, args.use_openai)


def _llms_txt(args: argparse.Namespace, settings: Settings) -> int:
    db = Database(settings.database_url)
    try:
        db.upgrade()
        pages = llms.stored_pages(db)
    finally:
        db.dispose()
    render = llms.llms_full_txt if args.full else llms.llms_txt
    title = llms.site_title(pages, settings.site_name)
    sys.stdout.write(render(pages, title, settings.site_summary))
    return 0


def _settings(args: argparse.Namespace, settings: Settings) -> int:
    rows = listing(settings)
    if args.json:
        shown = [{"name": n, "default": d, "value": v} for n, d, v in rows]
        print(json.dumps(shown, indent=2))
        return 0
    table = [("VARIABLE", "VALUE", "DEFAULT")]
    table += [(name, _cell(value), _cell(default)) for name, default, value in rows]
    widths = [max(len(row[i]) for row in table) for i in range(2)]
    for name, value, default in table:
        print(f"{name.ljust(widths[0])}  {value.ljust(widths[1])}  {default}".rstrip())
    return 0


def _cell(value: str, width: int = 40) -> str:
    """A table cell: (empty) for nothing, long values cut (--json shows them whole)."""
    if not value:
        return "(empty)"
    return value if len(value) <= width else value[: width - 1] + "…"


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every flag's default, except for flags that have none (switches, lists, unset)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, []):
            return action.help
        return super()._get_help_string(action)


def _bounded(kind: type, low: float, high: float, noun: str) -> Any:
    """An argparse type: a number of `kind` from `low` to `high`, with a clear refusal."""

    def parse(value: str) -> Any:
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {noun}, got {value!r}") from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"{noun} is from {low} to {high}, got {number}")
        return number

    return parse


_port = _bounded(int, 0, 65535, "a port number")
_rate = _bounded(float, 0.0, 1.0, "a share")


def _database(value: str) -> str:
    try:
        return normalize_database_url(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not {exc}") from None


def _version() -> str:
    try:
        return version("docschat")
    except PackageNotFoundError:
        return "(not installed)"


def parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    top = argparse.ArgumentParser(
        prog="docschat",
        description="An AI assistant for a documentation site: crawl the docs, serve the "
        "chat widget and its API, answer with OpenAI. Settings come from the environment "
        "(see `docschat settings`).",
        formatter_class=_Help,
    )
    top.add_argument("--version", action="version", version=f"docschat {_version()}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, run: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=summary, description=summary + ".", formatter_class=_Help)
        p.set_defaults(run=run)
        return p

    p = command(
        "demo",
        "everything local: docschat's own docs served with the widget on every page, crawled "
        "and uploaded, answered by the built-in emulator (no key, no network) or, if asked, "
        "by OpenAI",
        _demo,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=_port, default=8000, help="port to listen on")
    p.add_argument(
        "--database",
        type=_database,
        default="sqlite:///docschat-demo.db",
        help="database URL (SQLite file or PostgreSQL)",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--openai",
        dest="use_openai",
        action="store_const",
        const=True,
        help="answer with OpenAI's Responses API (needs OPENAI_API_KEY) instead of the emulator",
    )
    which.add_argument(
        "--emulator",
        dest="use_openai",
        action="store_const",
        const=False,
        help="answer with the built-in emulator without asking (the default when "
        "OPENAI_API_KEY is unset or stdin is not a terminal; with a key on a terminal, "
        "the demo asks)",
    )

    p = command(
        "serve",
        "the proxy (API, widget, WebSockets) under gunicorn, with the answer worker in the "
        "same process unless DOCSCHAT_RUN_WORKER=0",
        _serve,
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on; 0.0.0.0 for every interface"
    )
    p.add_argument(
        "--port",
        type=_port,
        help="port to listen on (default: $PORT, else 8000; 0 picks a free one)",
    )

    command("worker", "the answer worker alone (the Procfile's worker process)", _worker)
    command(
        "setup",
        "create or verify the upstream vector store (and assistant, in Assistants mode) and "
        "record their ids in the database; safe to repeat",
        _setup,
    )
    p = command("db", "database maintenance", _db)
    p.add_argument("action", choices=["upgrade"], help="upgrade: apply every migration")

    p = command(
        "scrape",
        "crawl a documentation site, keep its pages in the database and upload them to the "
        "vector store; a new run uploads only what changed and removes what vanished",
        run_scrape,
    )
    add_scrape_arguments(p)
    p = command("docs", "list the stored documentation pages", run_docs)
    add_docs_arguments(p)
    p = command(
        "llms-txt",
        "print the stored pages as llms.txt (what GET /llms.txt answers), for a docs build "
        "to publish",
        _llms_txt,
    )
    p.add_argument(
        "--full", action="store_true", help="every page's Markdown (llms-full.txt) instead"
    )

    p = command(
        "report",
        "coverage gaps: questions without a source or with a thumbs-down, grouped by topic "
        "(what the console shows, for a weekly job)",
        run_report,
    )
    add_report_arguments(p)

    p = command(
        "sources",
        "every recorded source (site or folder) with its last sync, pages, size and error",
        run_sources,
    )
    add_docs_arguments(p)

    p = command(
        "settings",
        "every setting with its default and current value (secrets masked)",
        _settings,
    )
    p.add_argument("--json", action="store_true", help="print the list as JSON, values whole")

    p = command("emulator", "a local OpenAI-compatible upstream for offline use", _emulator)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=_port, default=8100, help="port to listen on")
    p.add_argument(
        "--latency-ms", type=int, default=1500, help="milliseconds a run takes to finish"
    )
    p.add_argument(
        "--tokens-per-second",
        type=float,
        default=40.0,
        help="speed of streamed answers; 0 sends each answer at once",
    )
    p.add_argument(
        "--fail-rate", type=_rate, default=0.0, help="share of runs that fail, from 0 to 1"
    )
    p.add_argument(
        "--api",
        choices=["both", "assistants", "responses"],
        default="both",
        help="which API generation to serve",
    )
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `docschat` command."""
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingError as exc:
        for problem in exc.problems:
            print(f"docschat: {problem}", file=sys.stderr)
        return 2
    configure(settings)
    for warning in unknown_variables():
        log.warning("%s", warning)
    try:
        return int(args.run(args, settings) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a clear line for the operator, never a traceback
        # Loaded already when an upstream error can happen; imported here so that commands
        # which never talk upstream do not load the openai SDK (see the module docstring).
        from proxy.upstream.errors import UpstreamError
        from proxy.upstream.failures import upstream_failure

        if isinstance(exc, UpstreamError):
            print(f"docschat: {upstream_failure(exc, settings)}", file=sys.stderr)
            return 2
        log.debug("failed", exc_info=True)
        print(f"docschat: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
