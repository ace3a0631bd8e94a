"""`docschat ...`: the command line of the service, the worker, setup, scraping and the demo."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from proxy import metrics_dir
from proxy.config import Settings


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    metrics_dir.share(settings)  # before the app's modules load prometheus-client
    from werkzeug.serving import make_server

    from proxy.web.app import create_app

    app = create_app(settings, with_worker=settings.run_worker)
    server = make_server(args.host, args.port, app, threaded=True)
    _announce(settings, f"docschat serving on http://{args.host}:{server.server_port}/")
    _until_signal(server.shutdown)
    server.serve_forever()
    app.extensions["docschat"].close()
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    metrics_dir.share(settings)  # before the service's modules load prometheus-client
    from proxy.services import build

    services = build(settings, with_worker=True, readers=False)  # warmed up when it returns
    _announce(settings, "docschat worker running")
    done = threading.Event()
    _until_signal(done.set)
    done.wait()
    services.close()
    return 0


def _announce(settings: Settings, line: str) -> None:
    """Say that the process is ready: a log line in JSON mode (every line is JSON), else a
    printed line."""
    if settings.log_json:
        logging.getLogger("docschat").info(line)
    else:
        print(line, flush=True)


def _until_signal(stop: object) -> None:
    """Call `stop` (in a thread) on SIGTERM or SIGINT."""

    def handler(_signum: int, _frame: object) -> None:
        threading.Thread(target=stop, daemon=True).start()  # type: ignore[arg-type]

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _setup(args: argparse.Namespace, settings: Settings) -> int:
    from proxy.setup import run_setup
    from proxy.storage.db import Database

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
    from proxy.storage.db import Database

    Database(settings.database_url).upgrade()
    print("database is up to date")
    return 0


def _emulator(args: argparse.Namespace, settings: Settings) -> int:
    from emulator.options import EmulatorOptions
    from emulator.server import serve

    options = EmulatorOptions(
        latency_ms=args.latency_ms,
        tokens_per_second=args.tokens_per_second,
        fail_rate=args.fail_rate,
        api=args.api,
    )
    print(f"emulator on http://{args.host}:{args.port}/v1", flush=True)
    serve(options, args.host, args.port)
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from proxy.cli.demo import run_demo

    return run_demo(args.host, args.port, args.database)


def parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    top = argparse.ArgumentParser(prog="docschat", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="everything local: emulator, bundled docs, widget on :8000")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--database", default="sqlite:///docschat-demo.db", help="database URL")
    p.set_defaults(run=_demo)

    p = sub.add_parser("serve", help="the proxy with its poller in-process")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(run=_serve)

    p = sub.add_parser("worker", help="the answer poller alone")
    p.set_defaults(run=_worker)

    p = sub.add_parser("setup", help="create or verify the upstream vector store (and assistant)")
    p.set_defaults(run=_setup)

    p = sub.add_parser("db", help="database maintenance")
    p.add_argument("action", choices=["upgrade"])
    p.set_defaults(run=_db)

    _scraper_commands(sub)

    p = sub.add_parser("emulator", help="a local OpenAI-compatible upstream for offline use")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8100)
    p.add_argument("--latency-ms", type=int, default=1500)
    p.add_argument("--tokens-per-second", type=float, default=40.0)
    p.add_argument("--fail-rate", type=float, default=0.0)
    p.add_argument("--api", choices=["both", "assistants", "responses"], default="both")
    p.set_defaults(run=_emulator)
    return top


def _scraper_commands(sub: argparse._SubParsersAction) -> None:
    """`scrape` and `docs`, defined by the scraper package."""
    from proxy.cli.scrape import add_docs_arguments, add_scrape_arguments, run_docs, run_scrape

    p = sub.add_parser("scrape", help="crawl a docs site, store and upload its pages")
    add_scrape_arguments(p)
    p.set_defaults(run=run_scrape)

    p = sub.add_parser("docs", help="list stored documents")
    add_docs_arguments(p)
    p.set_defaults(run=run_docs)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `docschat` command."""
    args = parser().parse_args(argv)
    settings = Settings.from_env()
    _logging(settings)
    try:
        return int(args.run(args, settings) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a clear line for the operator, never a traceback
        from proxy.upstream.errors import UpstreamError

        if isinstance(exc, UpstreamError):
            print(f"docschat: {exc.detail}", file=sys.stderr)
            return 2
        logging.getLogger("docschat").debug("failed", exc_info=True)
        print(f"docschat: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _logging(settings: Settings) -> None:
    from proxy.logs import configure

    configure(settings)


if __name__ == "__main__":
    sys.exit(main())
