"""Scale-out benchmark: WebSockets per web process, GET /messages at 1M rows, workers on PostgreSQL.

Three parts, each time-boxed, all on loopback:

1. `ws`: one web process holds N open WebSockets (gunicorn gthread as in gunicorn.conf.py, and
   `docschat serve`, which runs the same worker from code); its RSS as connections grow, then
   pushes to every connection (a burst, and paced) and how long each took to arrive.
2. `messages`: GET /api/sessions/{sid}/messages with 1,000,000 stored messages on PostgreSQL and
   on SQLite, load from `wrk` (apt-get install wrk) against the gunicorn configuration.
3. `workers`: answers/s and added latency with 1, 2 and 4 `docschat worker` processes sharing one
   PostgreSQL database, closed-loop readers on WebSockets, and a duplicate check.

    python bench/load.py [--parts ws,messages,workers] [--connections 2000] [--messages 1000000]
        [--readers 200] [--seconds 20] [--workers 1,2,4]

Writes bench/results/load.json and load.md, and the plot docs/scaling.png.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.answer_loop import DOCS, Emulator
from bench.common import RESULTS, percentiles
from tests.support import (
    ROOT,
    PrivatePostgres,
    docschat,
    emulator_stats,
    free_port,
    pg_schema,
    printed,
    provision,
    wait_http,
    wait_until,
)

PG_DSN = os.environ.get("BENCH_PG_DSN", "postgresql://root@127.0.0.1:5432/test")
KEY = "sk-bench"
PLOT = ROOT / "docs" / "scaling.png"


# --- infrastructure ----------------------------------------------------------------------------


@contextlib.contextmanager
def private_postgres(max_connections: int = 400) -> Iterator[str]:
    """A throw-away PostgreSQL cluster of our own, fsync on as in production; yields its DSN.

    Other people's tests on a shared server take its connections and CPU; a private cluster also
    lifts max_connections, which 4 workers with their pools need (see docs/scaling.md).
    """
    reason = PrivatePostgres.missing()
    if reason is not None:
        raise SystemExit(f"--pg private {reason}; use --pg shared")
    cluster = PrivatePostgres(max_connections, durable=True)
    try:
        yield cluster.dsn
    finally:
        cluster.destroy()


def psycopg_dsn(db_url: str) -> str:
    """A libpq DSN for a docschat PostgreSQL URL (search_path option kept)."""
    return db_url.replace("postgresql+psycopg://", "postgresql://", 1)


def base_env(db_url: str, **extra: str) -> dict[str, str]:
    """Settings for benchmark processes: no rate limits or caps in the way."""
    return {
        "DATABASE_URL": db_url,
        "OPENAI_API_KEY": KEY,
        "DOCSCHAT_LOG_LEVEL": "WARNING",
        "DOCSCHAT_RATE_SESSION_MINUTE": "1000000",
        "DOCSCHAT_RATE_SESSION_DAY": "1000000",
        "DOCSCHAT_RATE_IP_MINUTE": "1000000",
        "DOCSCHAT_RATE_IP_DAY": "10000000",
        "DOCSCHAT_RATE_GLOBAL_MINUTE": "10000000",
        "DOCSCHAT_DAILY_ANSWERS": "0",
        "DOCSCHAT_DAILY_TOKENS": "0",
        "DOCSCHAT_WS_PER_IP": "100000",
        "DOCSCHAT_RUN_WORKER": "0",
        **extra,
    }


def upgrade(env: dict[str, str]) -> None:
    """Create the schema with `docschat db upgrade`."""
    subprocess.run(
        [sys.executable, "-m", "proxy.cli", "db", "upgrade"],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        cwd=ROOT,
    )


def gunicorn(
    env: dict[str, str], log: Path, *, workers: int, threads: int, connections: int
) -> tuple[subprocess.Popen[bytes], str]:
    """The web process as the Procfile runs it (gunicorn.conf.py), sized by environment."""
    port = free_port()
    full = {
        **os.environ,
        **env,
        "PORT": str(port),
        "WEB_CONCURRENCY": str(workers),
        "DOCSCHAT_WEB_THREADS": str(threads),
    }
    args = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"]
    args += ["--worker-connections", str(connections), "--bind", f"127.0.0.1:{port}", "wsgi:app"]
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=full, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz", timeout=60, proc=proc, log=log)
    return proc, url


def serve(env: dict[str, str], log: Path, *, threads: int) -> tuple[subprocess.Popen[bytes], str]:
    """`docschat serve` (gunicorn, one worker), web only."""
    port = free_port()
    sized = {**env, "DOCSCHAT_WEB_THREADS": str(threads)}
    proc = docschat(["serve", "--port", str(port)], sized, log)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz", timeout=60, proc=proc, log=log)
    return proc, url


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process we started (SIGTERM, then SIGKILL)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def web_process(proc: subprocess.Popen[bytes]) -> psutil.Process:
    """The process that holds the connections: gunicorn's (only) worker, else the process."""
    parent = psutil.Process(proc.pid)
    children = parent.children()
    return children[0] if children else parent


def tree_rss(proc: subprocess.Popen[bytes]) -> int:
    """RSS of a process and its children, in bytes."""
    parent = psutil.Process(proc.pid)
    return sum(p.memory_info().rss for p in [parent, *parent.children(recursive=True)])


def insert_sessions(db_url: str, ids: list[str]) -> None:
    """Create sessions straight in the database (the API would do the same, only slower)."""
    now = datetime.now(UTC)
    if db_url.startswith("sqlite"):
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            stamp = now.replace(tzinfo=None).isoformat(sep=" ")
            conn.executemany(
                "INSERT INTO sessions (id, client_ip, created_at) VALUES (?, '', ?)",
                [(i, stamp) for i in ids],
            )
        return
    with (
        psycopg.connect(psycopg_dsn(db_url)) as conn,
        conn.cursor() as cur,
        cur.copy("COPY sessions (id, client_ip, created_at) FROM STDIN") as copy,
    ):
        for i in ids:
            copy.write_row((i, "", now))


# --- a small asyncio WebSocket client (wsproto), to hold thousands of connections cheaply ------


class AsyncWebSocket:
    """One client WebSocket on an asyncio stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.conn = WSConnection(ConnectionType.CLIENT)
        self.pending: list[str] = []
        self._partial = ""

    @classmethod
    async def connect(cls, host: str, port: int, path: str) -> AsyncWebSocket:
        """Open the TCP connection and complete the WebSocket handshake."""
        reader, writer = await asyncio.open_connection(host, port)
        ws = cls(reader, writer)
        writer.write(ws.conn.send(Request(host=f"{host}:{port}", target=path)))
        await writer.drain()
        while True:
            for event in await ws._events():
                if isinstance(event, AcceptConnection):
                    return ws
                if isinstance(event, RejectConnection):
                    raise ConnectionError(f"WebSocket refused ({event.status_code})")

    async def _events(self) -> list[Any]:
        data = await self.reader.read(65536)
        if not data:
            raise ConnectionError("connection closed")
        self.conn.receive_data(data)
        events = []
        for event in self.conn.events():
            if isinstance(event, TextMessage):
                self._partial += event.data
                if event.message_finished:
                    self.pending.append(self._partial)
                    self._partial = ""
            elif isinstance(event, Ping):
                self.writer.write(self.conn.send(event.response()))
            elif isinstance(event, CloseConnection):
                raise ConnectionError("closed by server")
            events.append(event)
        return events

    async def recv(self) -> str:
        """The next text message."""
        while not self.pending:
            await self._events()
        return self.pending.pop(0)

    def close(self) -> None:
        """Drop the connection."""
        self.writer.close()


# --- part 1: WebSockets per web process ---------------------------------------------------------


async def _hold_sockets(
    url: str,
    proc: subprocess.Popen[bytes],
    db_url: str,
    sids: list[str],
    budget: float,
) -> dict[str, Any]:
    port = int(url.rsplit(":", 1)[1])
    holder = web_process(proc)
    sockets: dict[str, AsyncWebSocket] = {}
    ramp: list[tuple[int, float]] = [(0, holder.memory_info().rss / 2**20)]
    began = time.monotonic()
    gate = asyncio.Semaphore(50)
    failures = 0

    async def open_one(sid: str) -> None:
        nonlocal failures
        async with gate:
            try:
                sockets[sid] = await asyncio.wait_for(
                    AsyncWebSocket.connect("127.0.0.1", port, f"/api/sessions/{sid}/events"), 30
                )
            except (OSError, TimeoutError, ConnectionError):
                failures += 1

    step = max(1, len(sids) // 8)
    for at in range(0, len(sids), step):
        if time.monotonic() - began > budget:
            break
        await asyncio.gather(*(open_one(s) for s in sids[at : at + step]))
        await asyncio.sleep(0.5)
        ramp.append((len(sockets), holder.memory_info().rss / 2**20))
    connect_seconds = time.monotonic() - began
    await asyncio.sleep(2)
    holder.cpu_percent()
    await asyncio.sleep(5)
    idle_cpu = holder.cpu_percent()
    rss = holder.memory_info().rss / 2**20
    threads = holder.num_threads()

    arrivals: dict[str, list[float]] = {sid: [] for sid in sockets}

    async def read(sid: str, ws: AsyncWebSocket) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while True:
                event = json.loads(await ws.recv())
                if event.get("type") == "bench":
                    arrivals[sid].append(time.time() - event["t"])

    readers = [asyncio.create_task(read(s, w)) for s, w in sockets.items()]
    dsn = psycopg_dsn(db_url)

    def notify(batch: list[str]) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            payloads = [
                json.dumps({"o": "bench", "s": s, "e": {"type": "bench", "t": time.time()}})
                for s in batch
            ]
            conn.execute(
                "SELECT pg_notify('docschat_events', p) FROM unnest(%s::text[]) AS p", (payloads,)
            )

    live = list(sockets)
    # A burst: every connection gets a push in the same instant.
    await asyncio.to_thread(notify, live)
    await asyncio.sleep(3)
    burst = [a[0] for a in arrivals.values() if a]
    burst_missing = sum(1 for a in arrivals.values() if not a)
    # Paced: the same pushes spread over two seconds.
    for a in arrivals.values():
        a.clear()
    chunk = max(1, len(live) // 40)
    for at in range(0, len(live), chunk):
        await asyncio.to_thread(notify, live[at : at + chunk])
        await asyncio.sleep(0.05)
    await asyncio.sleep(3)
    paced = [a[0] for a in arrivals.values() if a]
    paced_missing = sum(1 for a in arrivals.values() if not a)
    for task in readers:
        task.cancel()
    for ws in sockets.values():
        ws.close()
    return {
        "connections": len(sockets),
        "failed_connections": failures,
        "connect_seconds": round(connect_seconds, 1),
        "rss_mb": round(rss, 1),
        "rss_total_mb": round(tree_rss(proc) / 2**20, 1),
        "threads": threads,
        "idle_cpu_percent": round(idle_cpu, 1),
        "ramp": [(n, round(m, 1)) for n, m in ramp],
        "burst_ms": percentiles(burst) | {"max": max(burst, default=0) * 1000},
        "burst_within_100ms": sum(1 for x in burst if x <= 0.1),
        "burst_missing": burst_missing,
        "paced_ms": percentiles(paced) | {"max": max(paced, default=0) * 1000},
        "paced_within_100ms": sum(1 for x in paced if x <= 0.1),
        "paced_missing": paced_missing,
    }


def part_ws(tmp: Path, connections: int, budget: float) -> dict[str, Any]:
    """Part 1: WebSockets held by one web process, per server."""
    out: dict[str, Any] = {}
    for server in ("gunicorn-gthread", "docschat-serve"):
        with pg_schema(PG_DSN, "bench") as db_url:
            env = base_env(db_url, DOCSCHAT_WS_PER_SESSION="10")
            upgrade(env)
            sids = [secrets.token_urlsafe(32) for _ in range(connections)]
            insert_sessions(db_url, sids)
            if server == "gunicorn-gthread":
                proc, url = gunicorn(
                    env,
                    tmp / "ws-gunicorn.log",
                    workers=1,
                    threads=connections + 100,
                    connections=connections + 200,
                )
            else:
                proc, url = serve(env, tmp / "ws-serve.log", threads=connections + 100)
            try:
                out[server] = asyncio.run(_hold_sockets(url, proc, db_url, sids, budget))
            finally:
                stop(proc)
        print(f"ws {server}: {json.dumps({k: v for k, v in out[server].items() if k != 'ramp'})}")
    return out


# --- part 2: GET /messages with 1,000,000 stored messages ----------------------------------------

WRK_SCRIPT = """
local sids = {}
for line in io.lines("%s") do sids[#sids + 1] = line end
request = function()
  return wrk.format("GET", "/api/sessions/" .. sids[math.random(#sids)] .. "/messages")
end
"""


def seed_messages(db_url: str, total: int, per_session: int = 10) -> list[str]:
    """Store `total` messages in `total / per_session` sessions; returns the session ids."""
    sessions = [secrets.token_urlsafe(32) for _ in range(total // per_session)]
    insert_sessions(db_url, sessions)
    question = "How do I configure the database for many processes? " * 2
    answer = "Set DATABASE_URL to a PostgreSQL URL; every web process and worker shares it. " * 3
    html = f"<p>{answer}</p>"
    now = datetime.now(UTC)
    if db_url.startswith("sqlite"):
        stamp = now.replace(tzinfo=None).isoformat(sep=" ")
        rows = (
            (sid, role, text, page, "done", 0, "[]", stamp, stamp)
            for sid in sessions
            for n in range(per_session)
            for role, text, page in [
                ("user", question, "") if n % 2 == 0 else ("assistant", answer, html)
            ]
        )
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            conn.executemany(
                "INSERT INTO messages (session_id, role, text, html, status, stopped, sources, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return sessions
    columns = "session_id, role, text, html, status, stopped, sources, created_at, updated_at"
    with psycopg.connect(psycopg_dsn(db_url)) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY messages ({columns}) FROM STDIN") as copy:
            for sid in sessions:
                for n in range(per_session):
                    role, text, page = (
                        ("user", question, "") if n % 2 == 0 else ("assistant", answer, html)
                    )
                    copy.write_row((sid, role, text, page, "done", False, "[]", now, now))
        cur.execute("ANALYZE messages")
        cur.execute("ANALYZE sessions")
    return sessions


def run_wrk(url: str, sid_file: Path, connections: int, seconds: int) -> dict[str, Any]:
    """One wrk run against the messages endpoint; requests/s and latency percentiles."""
    script = sid_file.with_suffix(".lua")
    script.write_text(WRK_SCRIPT % sid_file)
    done = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    )
    text = done.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text)[1])
    latency = {
        p: _ms(m[1]) for p in ("50", "90", "99") if (m := re.search(rf"\s{p}%\s+(\S+)", text))
    }
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    socket_errors = re.search(r"Socket errors:.*", text)
    return {
        "connections": connections,
        "requests_per_second": rps,
        "latency_ms": latency,
        "non_2xx": int(errors[1]) if errors else 0,
        "socket_errors": socket_errors[0] if socket_errors else "",
    }


def _ms(value: str) -> float:
    number = float(re.match(r"[\d.]+", value)[0])
    unit = value[len(re.match(r"[\d.]+", value)[0]) :]
    return number * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def part_messages(tmp: Path, total: int, seconds: int, budget: float) -> dict[str, Any]:
    """Part 2: GET /messages throughput and latency at `total` stored messages, per database."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")
    out: dict[str, Any] = {}
    for db in ("postgres", "sqlite"):
        began = time.monotonic()
        context = pg_schema(PG_DSN, "bench") if db == "postgres" else _sqlite_file(tmp)
        with context as db_url:
            env = base_env(db_url)
            upgrade(env)
            sessions = seed_messages(db_url, total)
            seeded = time.monotonic() - began
            sid_file = tmp / f"sids-{db}.txt"
            sid_file.write_text("\n".join(random.sample(sessions, min(20000, len(sessions)))))
            proc, url = gunicorn(
                env, tmp / f"messages-{db}.log", workers=2, threads=32, connections=1000
            )
            try:
                httpx.get(f"{url}/api/sessions/{sessions[0]}/messages").raise_for_status()
                # Not counted: a first pass warms the page cache and the connection pools, as
                # hours of traffic have on a running site.
                run_wrk(url, sid_file, 16, max(3, seconds // 2))
                runs = []
                for connections in (8, 16, 64):
                    if time.monotonic() - began > budget:
                        break
                    runs.append(run_wrk(url, sid_file, connections, seconds))
                    print(f"messages {db}: {json.dumps(runs[-1])}")
            finally:
                stop(proc)
            out[db] = {"messages": total, "seed_seconds": round(seeded, 1), "runs": runs}
    return out


@contextlib.contextmanager
def _sqlite_file(tmp: Path) -> Iterator[str]:
    path = tmp / "messages.db"
    yield f"sqlite:///{path}"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


# --- part 3: answers/s with 1, 2 and 4 workers ---------------------------------------------------


def _wait_ready(tmp: Path, n: int, timeout: float = 60) -> None:
    """Wait until every worker of a run says it is running (warmed up and claiming)."""
    logs = [tmp / f"worker-{n}-{i}.log" for i in range(n)]
    wait_until(lambda: all(printed(log, "worker running") for log in logs), timeout, every=0.2)


async def _readers(url: str, count: int, seconds: float, latency: float) -> dict[str, Any]:
    port = int(url.rsplit(":", 1)[1])
    samples: list[float] = []
    errors: list[str] = []
    async with httpx.AsyncClient(
        base_url=url, timeout=60, limits=httpx.Limits(max_connections=64)
    ) as http:
        sids = []
        while len(sids) < count:
            with contextlib.suppress(httpx.HTTPError):
                r = await http.post("/api/sessions")
                sids.append(r.json()["session_id"])
        stop_at = time.monotonic() + seconds

        async def reader(sid: str) -> None:
            ws = await AsyncWebSocket.connect("127.0.0.1", port, f"/api/sessions/{sid}/events")
            try:
                n = 0
                while time.monotonic() < stop_at:
                    n += 1
                    t0 = time.time()
                    try:
                        r = await http.post(
                            f"/api/sessions/{sid}/messages",
                            json={"text": f"How do I install? {n}"},
                        )
                    except httpx.HTTPError as exc:
                        # e.g. a kept-alive connection the server closed just then: not asked.
                        errors.append(f"ask {type(exc).__name__}")
                        continue
                    if r.status_code != 202:
                        errors.append(f"ask {r.status_code}")
                        await asyncio.sleep(0.5)
                        continue
                    asked = r.json()["message"]["id"]
                    while True:
                        event = json.loads(await asyncio.wait_for(ws.recv(), 60))
                        m = event.get("message")
                        if (
                            event.get("type") == "message"
                            and m["role"] == "assistant"
                            and m["id"] > asked
                            and m["status"] in ("done", "error")
                        ):
                            if m["status"] == "done":
                                samples.append(time.time() - t0 - latency)
                            else:
                                errors.append(m["text"][:60])
                            break
            except (ConnectionError, OSError, TimeoutError) as exc:
                errors.append(repr(exc)[:80])
            finally:
                ws.close()

        began = time.monotonic()
        await asyncio.gather(*(reader(s) for s in sids))
        elapsed = time.monotonic() - began
    return {"answers": len(samples), "elapsed": elapsed, "added": samples, "errors": errors}


def part_workers(
    tmp: Path, counts: list[int], readers: int, seconds: float, latency_ms: int
) -> dict[str, Any]:
    """Part 3: answers/s and added latency with N workers sharing PostgreSQL."""
    out: dict[str, Any] = {}
    for n in counts:
        emulator = Emulator(tmp, latency_ms, 0)
        try:
            with pg_schema(PG_DSN, "bench") as db_url:
                env = base_env(
                    db_url, OPENAI_BASE_URL=f"{emulator.url}/v1", DOCSCHAT_MAX_QUEUED="5"
                )
                provision(env, DOCS)
                emulator.reset()
                web, url = gunicorn(
                    env,
                    tmp / f"workers-web-{n}.log",
                    workers=1,
                    threads=readers + 100,
                    connections=readers * 2 + 200,
                )
                workers = [
                    docschat(
                        ["worker"], {**env, "DOCSCHAT_RUN_WORKER": "1"}, tmp / f"worker-{n}-{i}.log"
                    )
                    for i in range(n)
                ]
                _wait_ready(tmp, n)  # warmed up: a fresh process loads the SDK first
                cpu0 = {w.pid: _cpu(w.pid) for w in workers}
                others = {"web": web.pid, "emulator": emulator.proc.pid}
                others0 = {k: _tree_cpu(pid) for k, pid in others.items()}
                try:
                    result = asyncio.run(_readers(url, readers, seconds, latency_ms / 1000))
                    cpu = sum(_cpu(w.pid) - cpu0[w.pid] for w in workers)
                    spent = {
                        f"{k}_cpu_seconds": round(_tree_cpu(pid) - others0[k], 1)
                        for k, pid in others.items()
                    }
                    # Answers still being written finish first; any left are reported unfinished.
                    with contextlib.suppress(AssertionError):
                        wait_until(
                            lambda: not _duplicates(db_url)["unfinished_jobs"], 30, every=0.2
                        )
                    dupes = _duplicates(db_url)
                    runs = sum(
                        v
                        for k, v in emulator_stats(emulator.url).items()
                        if k.startswith("POST") and k.endswith("/runs")
                    )
                finally:
                    for w in workers:
                        stop(w)
                    stop(web)
        finally:
            emulator.stop()
        added = result.pop("added")
        out[str(n)] = {
            "workers": n,
            "readers": readers,
            "answers": result["answers"],
            "answers_per_second": round(result["answers"] / result["elapsed"], 1),
            "added_ms": percentiles(added),
            "errors": len(result["errors"]),
            "error_samples": result["errors"][:5],
            "seconds": round(result["elapsed"], 1),
            "worker_cpu_seconds": round(cpu, 1),
            **spent,
            "upstream_runs_created": runs,
            **dupes,
        }
        print(f"workers {n}: {json.dumps(out[str(n)])}")
    return out


def _cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its children."""
    parent = psutil.Process(pid)
    return sum(_cpu(p.pid) for p in [parent, *parent.children(recursive=True)])


def _duplicates(db_url: str) -> dict[str, int]:
    """Questions with more or fewer than one answer, and answers copied twice."""
    with psycopg.connect(psycopg_dsn(db_url)) as conn:
        [(extra,)] = conn.execute(
            "SELECT count(*) FROM (SELECT question_id FROM answer_jobs GROUP BY question_id "
            "HAVING count(*) <> 1) AS q"
        ).fetchall()
        [(users, answers)] = conn.execute(
            "SELECT count(*) FILTER (WHERE role='user'), count(*) FILTER (WHERE role='assistant') "
            "FROM messages"
        ).fetchall()
        [(copied, distinct)] = conn.execute(
            "SELECT count(upstream_message_id), count(DISTINCT upstream_message_id) FROM messages"
        ).fetchall()
        [(unfinished,)] = conn.execute(
            "SELECT count(*) FROM answer_jobs WHERE state NOT IN ('done', 'error')"
        ).fetchall()
    return {
        "questions": users,
        "answer_messages": answers,
        "duplicate_jobs": extra,
        "duplicate_copies": copied - distinct,
        "unfinished_jobs": unfinished,
    }


# --- report --------------------------------------------------------------------------------------


def table(results: dict[str, Any]) -> str:
    """The markdown summary of every part that ran."""
    lines = [f"# Scale-out benchmark ({results['when']}, {results['machine']})", ""]
    lines += [f"PostgreSQL: {results.get('postgres', 'shared server')}.", ""]
    ws = results.get("ws")
    if ws:
        lines += [
            "## Open WebSockets held by one web process",
            "",
            "| server | connections | RSS MB | threads | idle CPU % | burst p50/p99/max ms "
            "| burst <=100 ms | paced p50/p99/max ms | paced <=100 ms |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, r in ws.items():
            b, p = r["burst_ms"], r["paced_ms"]
            lines.append(
                f"| {name} | {r['connections']} | {r['rss_mb']} | {r['threads']} "
                f"| {r['idle_cpu_percent']} | {b['p50']:.0f}/{b['p99']:.0f}/{b['max']:.0f} "
                f"| {r['burst_within_100ms']}/{r['connections']} "
                f"| {p['p50']:.0f}/{p['p99']:.0f}/{p['max']:.0f} "
                f"| {r['paced_within_100ms']}/{r['connections']} |"
            )
        lines.append("")
    msgs = results.get("messages")
    if msgs:
        lines += [
            "## GET /api/sessions/{sid}/messages (wrk, 2 threads, gunicorn 2 x gthread)",
            "",
            "| database | stored messages | connections | requests/s | p50 ms | p90 ms | p99 ms "
            "| non-2xx |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for db, r in msgs.items():
            for run in r["runs"]:
                lat = run["latency_ms"]
                lines.append(
                    f"| {db} | {r['messages']:,} | {run['connections']} "
                    f"| {run['requests_per_second']:.0f} | {lat.get('50', 0):.1f} "
                    f"| {lat.get('90', 0):.1f} | {lat.get('99', 0):.1f} | {run['non_2xx']} |"
                )
        lines.append("")
    for key in sorted(k for k in results if k.startswith("workers")):
        rows = list(results[key].values())
        if not rows:
            continue
        lines += [
            f"## Workers sharing PostgreSQL ({rows[0]['readers']} closed-loop readers, `{key}`)",
            "",
            "| workers | readers | answers | answers/s | added p50 ms | added p99 ms | errors "
            "| duplicate jobs | duplicate copies | runs created |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            a = r["added_ms"]
            lines.append(
                f"| {r['workers']} | {r['readers']} | {r['answers']} | {r['answers_per_second']} "
                f"| {a['p50']:.0f} | {a['p99']:.0f} | {r['errors']} | {r['duplicate_jobs']} "
                f"| {r['duplicate_copies']} | {r['upstream_runs_created']} |"
            )
        lines.append("")
    return "\n".join(lines)


def plot(results: dict[str, Any]) -> None:
    """docs/scaling.png: WebSocket memory, messages throughput, worker scaling."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    ax = axes[0]
    for name, r in (results.get("ws") or {}).items():
        xs, ys = zip(*r["ramp"], strict=True)
        ax.plot(xs, ys, marker="o", label=f"{name} (push p99 {r['paced_ms']['p99']:.0f} ms)")
    ax.axhline(300, color="grey", linestyle="--", linewidth=1, label="goal: 300 MB")
    ax.set_title("One web process: RSS vs open WebSockets")
    ax.set_xlabel("open WebSockets")
    ax.set_ylabel("RSS (MB)")
    ax.legend(fontsize=8)

    ax = axes[1]
    labels, values, notes = [], [], []
    for db, r in (results.get("messages") or {}).items():
        for run in r["runs"]:
            labels.append(f"{db}\nc={run['connections']}")
            values.append(run["requests_per_second"])
            notes.append(f"p99 {run['latency_ms'].get('99', 0):.0f} ms")
    bars = ax.bar(labels, values, color="tab:blue")
    for bar, note in zip(bars, notes, strict=True):
        ax.annotate(
            note,
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.axhline(1500, color="grey", linestyle="--", linewidth=1, label="goal: 1,500 req/s")
    ax.set_title("GET /messages, 1M stored messages (wrk)")
    ax.set_ylabel("requests/s")
    ax.legend(fontsize=8)

    ax = axes[2]
    rows = list((results.get("workers") or {}).values())
    light = list((results.get("workers_light") or {}).values())
    twin = ax.twinx()
    for series, style in ((rows, "-"), (light, "--")):
        if not series:
            continue
        xs = [r["workers"] for r in series]
        readers = series[0]["readers"]
        ax.plot(
            xs,
            [r["answers_per_second"] for r in series],
            "o" + style,
            color="tab:blue",
            label=f"answers/s, {readers} readers",
        )
        twin.plot(
            xs,
            [r["added_ms"]["p50"] for r in series],
            "s" + style,
            color="tab:red",
            label=f"added p50, {readers} readers",
        )
        ax.set_xticks(xs)
    twin.set_yscale("log")
    twin.set_ylabel("added latency p50 (ms, log)", color="tab:red")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize=8)
    twin.legend(loc="upper right", fontsize=8)
    ax.set_title("Workers sharing PostgreSQL (2 cores)")
    ax.set_xlabel("worker processes")
    ax.set_ylabel("answers/s")
    fig.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PLOT, dpi=110)


def main() -> None:
    """Run the chosen parts and write results, table and plot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="ws,messages,workers")
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--wrk-seconds", type=int, default=10)
    parser.add_argument("--readers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--latency-ms", type=int, default=500)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--budget", type=float, default=240, help="seconds per part, at most")
    parser.add_argument(
        "--pg",
        choices=["private", "shared"],
        default="private",
        help="a private PostgreSQL cluster (needs root) or BENCH_PG_DSN (default: local `test`)",
    )
    parser.add_argument("--plot-only", action="store_true", help="redraw from load.json")
    parser.add_argument(
        "--workers-key", default="workers", help="results key of part 3 (to keep several loads)"
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    previous = RESULTS / "load.json"
    results: dict[str, Any] = json.loads(previous.read_text()) if previous.exists() else {}
    if args.plot_only:
        plot(results)
        return
    results["when"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results["machine"] = f"{os.cpu_count()} cores, {psutil.virtual_memory().total // 2**30} GiB"
    global PG_DSN
    with contextlib.ExitStack() as stack:
        if args.pg == "private":
            PG_DSN = stack.enter_context(private_postgres())
        results["postgres"] = "private cluster" if args.pg == "private" else "shared server"
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="docschat-load-"))
        if "ws" in parts:
            results["ws"] = part_ws(Path(tmp), args.connections, args.budget)
        if "messages" in parts:
            results["messages"] = part_messages(
                Path(tmp), args.messages, args.wrk_seconds, args.budget
            )
        if "workers" in parts:
            counts = [int(n) for n in args.workers.split(",")]
            results[args.workers_key] = part_workers(
                Path(tmp), counts, args.readers, args.seconds, args.latency_ms
            )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "load.json").write_text(json.dumps(results, indent=2) + "\n")
    summary = table(results)
    (RESULTS / "load.md").write_text(summary + "\n")
    print(summary)
    plot(results)


if __name__ == "__main__":
    main()
