"""Answer-loop benchmark: docschat (polling and streaming) beside a direct openai-SDK baseline.

200 concurrent sessions each ask 3 questions of an emulator that takes 2 s per answer. Reports the
latency docschat adds on top of the emulator's own run time, upstream requests per answer, errors,
throughput, proxy CPU and peak memory, and the ratios against the baseline, all from one run.

    python bench/answer_loop.py [--sessions 200] [--questions 3] [--latency-ms 2000]
        [--db sqlite|postgres] [--modes baseline,poll,stream]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import httpx
import websocket
from openai import OpenAI

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Sampler, percentiles, write_results
from tests.support import (
    docschat,
    emulator_requests,
    free_port,
    provision,
    reset_emulator_stats,
    wait_http,
)

KEY = "sk-bench"
QUESTIONS = [
    "How do I install docschat with pip?",
    "Which database does the DATABASE_URL setting choose?",
    "How do I run the demo on port 8000?",
]
DOCS = [
    (
        "http://docs.test/install",
        "Installing",
        "Install the package with pip install docschat. "
        "Then run docschat demo to start the local demo on port 8000.",
    ),
    (
        "http://docs.test/config",
        "Configuration",
        "The DATABASE_URL setting chooses the database. "
        "PostgreSQL is supported for many processes; SQLite is the default file.",
    ),
]


class Emulator:
    """An emulator process with its own request counters."""

    def __init__(self, tmp: Path, latency_ms: int, tps: float) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log = tmp / f"emulator-{self.port}.log"
        self.proc = docschat(
            [
                "emulator",
                "--port",
                str(self.port),
                "--latency-ms",
                str(latency_ms),
                "--tokens-per-second",
                str(tps),
            ],
            {},
            log,
        )
        wait_http(f"{self.url}/_emulator/stats", proc=self.proc, log=log)

    def reset(self) -> None:
        reset_emulator_stats(self.url)

    def requests(self) -> int:
        return emulator_requests(self.url)

    def timings(self) -> dict[str, dict[str, float | None]]:
        return httpx.get(f"{self.url}/_emulator/timings", timeout=30).json()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def run_time(emulator: Emulator, key: str) -> float:
    """The emulator's own median time from run creation to `key` (completed or first_token)."""
    spans = [t[key] - t["created"] for t in emulator.timings().values() if t.get(key)]
    return statistics.median(spans) if spans else 0.0


def proxy_session(base: str, port: int, questions: int, out: list[dict[str, Any]]) -> None:
    """One reader: a session, a WebSocket, questions one after another."""
    http = httpx.Client(base_url=base, timeout=120)
    try:
        sid = http.post("/api/sessions").json()["session_id"]
        ws = websocket.create_connection(
            f"ws://127.0.0.1:{port}/api/sessions/{sid}/events", timeout=120
        )
    except Exception as exc:  # counted as errors below
        out.append({"error": repr(exc)})
        return
    try:
        for i in range(questions):
            t0 = time.time()
            r = http.post(
                f"/api/sessions/{sid}/messages", json={"text": QUESTIONS[i % len(QUESTIONS)]}
            )
            if r.status_code != 202:
                out.append({"error": f"ask {r.status_code}"})
                continue
            asked = r.json()["message"]["id"]
            first = None
            while True:
                event = json.loads(ws.recv())
                if event["type"] == "delta" and first is None and event["message_id"] > asked:
                    first = time.time()
                m = event.get("message")
                if (
                    event["type"] == "message"
                    and m["role"] == "assistant"
                    and m["id"] > asked
                    and m["status"] in ("done", "error")
                ):
                    out.append(
                        {
                            "t0": t0,
                            "first": first,
                            "done": time.time(),
                            "error": None if m["status"] == "done" else m["text"],
                        }
                    )
                    break
    except Exception as exc:
        out.append({"error": repr(exc)})
    finally:
        ws.close()
        http.close()


def baseline_session(
    base_url: str, assistant_id: str, questions: int, out: list[dict[str, Any]]
) -> None:
    """The seed-equivalent loop: add message, create run, retrieve every 500 ms, list messages."""
    client = OpenAI(api_key=KEY, base_url=base_url, max_retries=0, timeout=60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            thread = client.beta.threads.create()
            for i in range(questions):
                t0 = time.time()
                msg = client.beta.threads.messages.create(
                    thread.id, role="user", content=QUESTIONS[i % len(QUESTIONS)]
                )
                run = client.beta.threads.runs.create(thread.id, assistant_id=assistant_id)
                while run.status in ("queued", "in_progress"):
                    time.sleep(0.5)  # the seed's polling pace: the behaviour compared against
                    run = client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
                client.beta.threads.messages.list(thread.id, after=msg.id, order="asc")
                out.append(
                    {
                        "t0": t0,
                        "first": None,
                        "done": time.time(),
                        "error": None if run.status == "completed" else run.status,
                    }
                )
        except Exception as exc:
            out.append({"error": repr(exc)})


def drive(target: Any, args_for: Any, sessions: int) -> tuple[list[dict[str, Any]], float]:
    """Run `sessions` readers at once; returns their records and the wall time."""
    out: list[dict[str, Any]] = []
    threads = [threading.Thread(target=target, args=(*args_for(i), out)) for i in range(sessions)]
    began = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out, time.time() - began


def summarise(
    name: str,
    records: list[dict[str, Any]],
    wall: float,
    emu: Emulator,
    answers_expected: int,
    sampler: Sampler | None,
    streaming: bool,
) -> dict[str, Any]:
    ok = [r for r in records if not r.get("error")]
    done_span = run_time(emu, "completed")
    added = [r["done"] - r["t0"] - done_span for r in ok]
    result: dict[str, Any] = {
        "mode": name,
        "answers": len(ok),
        "errors": answers_expected - len(ok),
        "emulator_run_time_s": round(done_span, 3),
        "added_latency_ms": percentiles(added),
        "requests_per_answer": round(emu.requests() / max(1, len(ok)), 2),
        "throughput_answers_per_s": round(len(ok) / wall, 2),
        "wall_s": round(wall, 1),
        "error_samples": sorted({str(r["error"])[:200] for r in records if r.get("error")})[:5],
    }
    if streaming:
        first_span = run_time(emu, "first_token")
        result["emulator_first_token_s"] = round(first_span, 3)
        result["first_token_delay_ms"] = percentiles(
            [r["first"] - r["t0"] - first_span for r in ok if r.get("first")]
        )
    if sampler is not None:
        result["proxy_cpu_s"] = round(sampler.cpu, 1)
        result["proxy_peak_rss_mb"] = round(sampler.peak_rss / 2**20, 1)
    return result


def run_proxy(
    tmp: Path, name: str, streaming: bool, opts: argparse.Namespace, db_url: str, split: bool
) -> dict[str, Any]:
    """docschat as one `serve` process, or (split) a web process and a worker sharing Redis."""
    emu = Emulator(tmp, opts.latency_ms, opts.tokens_per_second if streaming else 0)
    port = free_port()
    env = {
        "OPENAI_API_KEY": KEY,
        "OPENAI_BASE_URL": f"{emu.url}/v1",
        "DATABASE_URL": db_url,
        "DOCSCHAT_API": "assistants",
        "DOCSCHAT_STREAMING": "1" if streaming else "0",
        "DOCSCHAT_WORKER_THREADS": os.environ.get("X_THREADS") or str(max(64, opts.sessions + 16)),
        "DOCSCHAT_RATE_SESSION_MINUTE": "100000",
        "DOCSCHAT_RATE_IP_MINUTE": "100000",
        "DOCSCHAT_RATE_GLOBAL_MINUTE": "100000",
        "DOCSCHAT_RATE_IP_DAY": "1000000",
        "DOCSCHAT_WS_PER_IP": "100000",
        "DOCSCHAT_LOG_LEVEL": "WARNING",
    }
    if split:
        env.update(REDIS_URL=opts.redis_url, DOCSCHAT_RUN_WORKER="0")
        _clear_redis(opts.redis_url)
    provision(env, DOCS)
    log = tmp / f"proxy-{name}.log"
    proc = docschat(["serve", "--port", str(port)], env, log)
    procs = [proc]
    if split:
        procs.append(docschat(["worker"], env, tmp / f"worker-{name}.log"))
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc, log=log)
        # One answer first, so that one-off costs (lazy imports, first connections) are not
        # counted: a docs site's service runs for days.
        proxy_session(f"http://127.0.0.1:{port}", port, 1, [])
        emu.reset()
        sampler = Sampler(*(p.pid for p in procs))
        records, wall = drive(
            proxy_session,
            lambda i: (f"http://127.0.0.1:{port}", port, opts.questions),
            opts.sessions,
        )
        sampler.stop()
        return summarise(
            name, records, wall, emu, opts.sessions * opts.questions, sampler, streaming
        )
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        emu.stop()


def _clear_redis(url: str) -> None:
    """Forget counters of an earlier run (the rate limits live there in split mode)."""
    import redis

    client = redis.Redis.from_url(url)
    for key in client.scan_iter("docschat:*"):
        client.delete(key)


def run_baseline(tmp: Path, opts: argparse.Namespace) -> dict[str, Any]:
    emu = Emulator(tmp, opts.latency_ms, 0)
    client = OpenAI(api_key=KEY, base_url=f"{emu.url}/v1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        store = client.vector_stores.create(name="bench")
        for url, _title, text in DOCS:
            f = client.files.create(
                file=(url.rsplit("/", 1)[-1] + ".md", text.encode()), purpose="assistants"
            )
            client.vector_stores.files.create(store.id, file_id=f.id)
        assistant = client.beta.assistants.create(
            model="gpt-4.1-mini",
            tools=[{"type": "file_search"}],
            tool_resources={"file_search": {"vector_store_ids": [store.id]}},
        )
    emu.reset()
    try:
        records, wall = drive(
            baseline_session,
            lambda i: (f"{emu.url}/v1", assistant.id, opts.questions),
            opts.sessions,
        )
        return summarise(
            "baseline", records, wall, emu, opts.sessions * opts.questions, None, False
        )
    finally:
        emu.stop()


def main() -> None:
    """Run every mode in one go and write the results."""
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--latency-ms", type=int, default=2000)
    parser.add_argument("--tokens-per-second", type=float, default=40)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--modes",
        default="baseline,poll,stream,poll-split,stream-split",
        help="'-split': a web process and a worker process sharing the database and Redis",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    opts = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="docschat-bench-"))
    results = []
    for mode in opts.modes.split(","):
        if mode == "baseline":
            results.append(run_baseline(tmp, opts))
            continue
        if opts.db == "postgres":  # a schema per mode
            db_url = (
                "postgresql+psycopg://127.0.0.1:5432/test?options=-csearch_path%3Dbench_"
                + mode.replace("-", "_")
            )
            import psycopg

            with psycopg.connect("postgresql://127.0.0.1:5432/test", autocommit=True) as c:
                schema = "bench_" + mode.replace("-", "_")
                c.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")
        else:
            db_url = f"sqlite:///{tmp / (mode + '.db')}"
        streaming, split = mode.startswith("stream"), mode.endswith("-split")
        results.append(run_proxy(tmp, mode, streaming, opts, db_url, split))
        print(json.dumps(results[-1]), flush=True)
    base = next((r for r in results if r["mode"] == "baseline"), None)
    cols = [
        "mode", "answers", "errors", "added p50 ms", "p95", "p99", "first-token p50 ms", "p99",
        "req/answer", "answers/s", "proxy CPU s", "peak RSS MB", "p50 vs baseline",
    ]  # fmt: skip
    rows = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    nan = float("nan")
    for r in results:
        lat, ft = r["added_latency_ms"], r.get("first_token_delay_ms", {})
        ratio = "1.00x"
        if base and r is not base:
            ratio = f"{lat['p50'] / base['added_latency_ms']['p50']:.2f}x"
        cells = [
            r["mode"], r["answers"], r["errors"], f"{lat['p50']:.0f}", f"{lat['p95']:.0f}",
            f"{lat['p99']:.0f}", f"{ft.get('p50', nan):.0f}", f"{ft.get('p99', nan):.0f}",
            r["requests_per_answer"], r["throughput_answers_per_s"], r.get("proxy_cpu_s", "-"),
            r.get("proxy_peak_rss_mb", "-"), ratio,
        ]  # fmt: skip
        rows.append("| " + " | ".join(str(c) for c in cells) + " |")
    header = (
        f"answer_loop: {opts.sessions} sessions x {opts.questions} questions, emulator "
        f"{opts.latency_ms} ms per answer ({opts.tokens_per_second} tokens/s when streaming), "
        f"{opts.db}\n\n"
    )
    write_results(
        f"answer_loop-{opts.db}",
        {"options": vars(opts), "results": results},
        header + "\n".join(rows),
    )


if __name__ == "__main__":
    main()
