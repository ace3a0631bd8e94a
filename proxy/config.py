"""Every setting docschat reads, declared once as data; the only reader of os.environ."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any


def _setting(env: str, default: Any, help: str) -> Any:
    """Declare one setting: its environment variable, default and help text."""
    return field(default=default, metadata={"env": env, "help": help})


@dataclass(frozen=True)
class Settings:
    """The service's settings; build with `Settings.from_env()`."""

    openai_api_key: str = _setting(
        "OPENAI_API_KEY", "", "API key sent upstream; empty means a local emulator is expected."
    )
    openai_base_url: str = _setting(
        "OPENAI_BASE_URL", "", "Upstream base URL (the SDK's own setting); empty is api.openai.com."
    )
    database_url: str = _setting(
        "DATABASE_URL", "sqlite:///docschat.db", "SQLAlchemy URL of the database."
    )
    db_pool_size: int = _setting(
        "DOCSCHAT_DB_POOL_SIZE",
        4,
        "PostgreSQL connections one process keeps open (each gunicorn worker is a process).",
    )
    db_max_overflow: int = _setting(
        "DOCSCHAT_DB_MAX_OVERFLOW",
        4,
        "Extra PostgreSQL connections one process may open at peaks, closed again after use.",
    )
    db_pool_timeout: float = _setting(
        "DOCSCHAT_DB_POOL_TIMEOUT",
        10.0,
        "Seconds a request waits for a free pooled connection before it answers 503.",
    )
    db_processes: int = _setting(
        "DOCSCHAT_DB_PROCESSES",
        6,
        "docschat processes sharing the database, on every host (each gunicorn worker counts); "
        "at start each process warns when they may open more than max_connections.",
    )
    api: str = _setting(
        "DOCSCHAT_API",
        "",
        "Upstream API: `responses` or `assistants`; empty means what `docschat setup` "
        "detected, else `responses` for api.openai.com.",
    )
    model: str = _setting("DOCSCHAT_MODEL", "gpt-4.1-mini", "Model that writes the answers.")
    instructions: str = _setting(
        "DOCSCHAT_INSTRUCTIONS",
        "You answer questions about this product's documentation. Use only the documentation "
        "found with file search, cite it, and keep answers brief. If the documentation does "
        "not cover a question, say so.",
        "Instructions given to the model with every answer.",
    )
    streaming: bool = _setting(
        "DOCSCHAT_STREAMING", True, "Stream answers token by token; polling stays the fallback."
    )
    poll_min_interval: float = _setting(
        "DOCSCHAT_POLL_MIN_INTERVAL", 0.1, "Shortest wait in seconds between two polls of a run."
    )
    poll_max_interval: float = _setting(
        "DOCSCHAT_POLL_MAX_INTERVAL", 5.0, "Longest wait in seconds between two polls of a run."
    )
    run_estimate: float = _setting(
        "DOCSCHAT_RUN_ESTIMATE",
        2.0,
        "First guess in seconds of how long a run takes, until runs have been measured.",
    )
    tick_interval: float = _setting(
        "DOCSCHAT_TICK_INTERVAL", 1.0, "Seconds between worker sweeps when nothing is due sooner."
    )
    answer_deadline: float = _setting(
        "DOCSCHAT_ANSWER_DEADLINE",
        120.0,
        "Seconds after which an unfinished answer ends as an error.",
    )
    lease_seconds: float = _setting(
        "DOCSCHAT_LEASE_SECONDS",
        30.0,
        "How long a worker owns a claimed job before others may take it.",
    )
    worker_threads: int = _setting(
        "DOCSCHAT_WORKER_THREADS", 32, "Answer jobs one worker process runs at once."
    )
    upstream_timeout: float = _setting(
        "DOCSCHAT_UPSTREAM_TIMEOUT", 20.0, "Seconds to wait for one upstream request."
    )
    stream_stall: float = _setting(
        "DOCSCHAT_STREAM_STALL",
        15.0,
        "Seconds without a stream event before falling back to polling.",
    )
    max_question_chars: int = _setting(
        "DOCSCHAT_MAX_QUESTION_CHARS", 4000, "Longest question accepted, in characters."
    )
    max_queued_per_session: int = _setting(
        "DOCSCHAT_MAX_QUEUED", 3, "Unanswered questions one session may have waiting."
    )
    history_chars: int = _setting(
        "DOCSCHAT_HISTORY_CHARS",
        6000,
        "Characters of recent history sent to seed a new upstream conversation.",
    )
    context_turns: int = _setting(
        "DOCSCHAT_CONTEXT_TURNS",
        12,
        "Newest messages of a conversation the model reads (Assistants); Responses mode lets "
        "the upstream truncate automatically.",
    )
    max_answer_tokens: int = _setting(
        "DOCSCHAT_MAX_ANSWER_TOKENS", 1000, "Longest answer the model may write, in tokens."
    )
    allowed_origins: str = _setting(
        "DOCSCHAT_ALLOWED_ORIGINS",
        "",
        "Comma-separated origins (https://docs.example.com) allowed to embed the widget and "
        "call the API; empty allows only the proxy's own origin.",
    )
    admin_token: str = _setting(
        "DOCSCHAT_ADMIN_TOKEN", "", "Bearer token for operator endpoints; empty turns them off."
    )
    trusted_proxies: int = _setting(
        "DOCSCHAT_TRUSTED_PROXIES",
        0,
        "Reverse proxies in front of the service (for X-Forwarded-For).",
    )
    rate_session_minute: int = _setting(
        "DOCSCHAT_RATE_SESSION_MINUTE", 6, "Questions per session per minute."
    )
    rate_session_day: int = _setting(
        "DOCSCHAT_RATE_SESSION_DAY", 200, "Questions per session per day."
    )
    rate_ip_minute: int = _setting(
        "DOCSCHAT_RATE_IP_MINUTE", 20, "Questions per client IP per minute."
    )
    rate_ip_day: int = _setting("DOCSCHAT_RATE_IP_DAY", 500, "Questions per client IP per day.")
    rate_global_minute: int = _setting(
        "DOCSCHAT_RATE_GLOBAL_MINUTE", 600, "Questions per minute across all readers."
    )
    daily_answer_cap: int = _setting(
        "DOCSCHAT_DAILY_ANSWERS", 5000, "Answers per day across all readers (0 = no cap)."
    )
    daily_token_cap: int = _setting(
        "DOCSCHAT_DAILY_TOKENS",
        5_000_000,
        "Upstream tokens per day across all readers (0 = no cap).",
    )
    ws_per_ip: int = _setting("DOCSCHAT_WS_PER_IP", 50, "Open WebSockets per client IP.")
    ws_per_session: int = _setting("DOCSCHAT_WS_PER_SESSION", 5, "Open WebSockets per session.")
    redis_url: str = _setting(
        "REDIS_URL", "", "Redis for shared rate counters and cross-process events (optional)."
    )
    run_worker: bool = _setting(
        "DOCSCHAT_RUN_WORKER", True, "Run the answer worker inside the web process (`serve`)."
    )
    log_json: bool = _setting(
        "DOCSCHAT_LOG_JSON",
        False,
        "Write every log line (gunicorn's access and error logs too) as one JSON object.",
    )
    log_level: str = _setting("DOCSCHAT_LOG_LEVEL", "INFO", "Log level.")
    metrics_dir: str = _setting(
        "DOCSCHAT_METRICS_DIR",
        "",
        "Directory where the docschat processes of one machine share their metrics; empty: "
        "one under the system temp directory per user and database.",
    )
    public: bool = _setting(
        "DOCSCHAT_PUBLIC", False, "Production start: warn loudly when no origins are allowed."
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read settings from the environment (or `env`), then apply `overrides`."""
        source = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = source.get(f.metadata["env"])
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(raw, type(f.default), f.metadata["env"])
        values.update(overrides)
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        """A copy with some settings changed."""
        return replace(self, **changes)

    @property
    def origins(self) -> list[str]:
        """Allowed embedding origins as a list."""
        return [o.strip().rstrip("/") for o in self.allowed_origins.split(",") if o.strip()]


def _parse(raw: str, kind: type, name: str) -> Any:
    """Convert one environment string to the setting's type, with a clear error."""
    try:
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        return kind(raw)
    except ValueError as exc:
        raise SystemExit(f"{name}: cannot read {raw!r} as {kind.__name__}") from exc


def documented() -> list[tuple[str, str, str]]:
    """Every setting as (environment variable, default, help) for docs and checks."""
    return [(f.metadata["env"], str(f.default), f.metadata["help"]) for f in fields(Settings)]
