"""Every setting docschat reads, declared once as data; the only reader of os.environ.

Each setting names its environment variable, default, help text and the values it accepts;
`Settings.from_env` refuses anything else with one line naming the variable, the value and what
is allowed, so a typo stops the start instead of running with a surprise.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields, replace
from typing import Any
from urllib.parse import urlsplit

from redis.connection import parse_url as parse_redis_url
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})
DATABASE_URLS = (
    "a database URL: sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/NAME "
    "(postgres:// works too)"
)
PREFIX = "DOCSCHAT_"
# DOCSCHAT_* variables the test suite reads; they are no settings but no typos either.
NOT_SETTINGS = frozenset({"DOCSCHAT_LIVE_TEST", "DOCSCHAT_OPENAPI_SPEC"})


class SettingError(ValueError):
    """Settings that cannot be used; each problem is one line for the operator."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def normalize_database_url(raw: str) -> str:
    """The SQLAlchemy URL of a DATABASE_URL: `postgres://` and `postgresql://` both mean
    psycopg 3 (`postgresql+psycopg://`); SQLite stays as it is. ValueError names what is allowed."""
    try:
        url = make_url(raw.strip())
    except ArgumentError:
        raise ValueError(DATABASE_URLS) from None
    backend, _, driver = url.drivername.partition("+")
    if backend in ("postgres", "postgresql") and driver in ("", "psycopg"):
        url = url.set(drivername="postgresql+psycopg")
    elif not (backend == "sqlite" and driver in ("", "pysqlite")):
        raise ValueError(DATABASE_URLS)
    return url.render_as_string(hide_password=False)


def _web_url(raw: str) -> str:
    """An http(s) URL with a host (the upstream's base URL)."""
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("an http(s) URL such as https://api.openai.com/v1")
    return raw.strip()


def _handoff_url(raw: str) -> str:
    """An http(s) or mailto URL for "Contact support"; `{question}` is filled in, URL-encoded."""
    text = raw.strip()
    parts = urlsplit(text.replace("{question}", "q"))
    if not (parts.scheme in ("http", "https") and parts.hostname) and parts.scheme != "mailto":
        raise ValueError(
            "an http(s) or mailto: URL, optionally with {question}, such as "
            "https://support.example.com/new?subject={question}"
        )
    return text


def _origins(raw: str) -> str:
    """Comma-separated web origins: scheme, host and an optional port, nothing more."""
    for origin in (o.strip() for o in raw.split(",")):
        if not origin:
            continue
        parts = urlsplit(origin)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
        ):
            raise ValueError(
                "a comma-separated list of origins such as https://docs.example.com "
                "(scheme, host, optional port; no path)"
            )
    return raw


def _redis_url(raw: str) -> str:
    """A URL redis-py can connect to."""
    try:
        parse_redis_url(raw.strip())
    except ValueError:
        raise ValueError(
            "a Redis URL: redis://[:PASSWORD@]HOST[:PORT][/DB], rediss://... or unix://PATH"
        ) from None
    return raw.strip()


DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd]?)$")
UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(raw: str) -> float:
    """Seconds, or a number with a unit (`90s`, `15m`, `6h`, `1d`); 0 or empty means off."""
    text = raw.strip().lower()
    if text in ("", "off"):
        return 0.0
    match = DURATION.match(text)
    if not match:
        raise ValueError("seconds or a duration such as 90s, 15m, 6h or 1d; 0 turns it off")
    return float(match.group(1)) * UNIT_SECONDS[match.group(2)]


def _setting(
    env: str,
    default: Any,
    help: str,
    *,
    low: float | None = None,
    above: float | None = None,
    high: float | None = None,
    choices: tuple[str, ...] = (),
    allowed: str = "",
    read: Callable[[str], Any] | None = None,
    secret: bool = False,
) -> Any:
    """Declare one setting: its environment variable, default, help text, and what it accepts:
    numbers from `low` (inclusive) or `above` (exclusive) up to `high`, one of `choices`, or
    whatever `read` turns into a value (its ValueError says what is allowed). `allowed`
    overrides the description of the allowed values; `secret` values are never shown."""
    rule = {"low": low, "above": above, "high": high, "choices": choices, "read": read}
    return field(
        default=default,
        metadata={"env": env, "help": help, "allowed": allowed, "secret": secret, **rule},
    )


@dataclass(frozen=True)
class Settings:
    """The service's settings; build with `Settings.from_env()`."""

    openai_api_key: str = _setting(
        "OPENAI_API_KEY",
        "",
        "API key sent upstream; empty means a local emulator is expected.",
        secret=True,
    )
    openai_base_url: str = _setting(
        "OPENAI_BASE_URL",
        "",
        "Upstream base URL (the SDK's own setting); empty is api.openai.com.",
        read=_web_url,
    )
    database_url: str = _setting(
        "DATABASE_URL",
        "sqlite:///docschat.db",
        "SQLAlchemy URL of the database; `postgres://` and `postgresql://` use psycopg 3.",
        read=normalize_database_url,
    )
    db_pool_size: int = _setting(
        "DOCSCHAT_DB_POOL_SIZE",
        4,
        "PostgreSQL connections one process keeps open (each gunicorn worker is a process).",
        low=1,
    )
    db_max_overflow: int = _setting(
        "DOCSCHAT_DB_MAX_OVERFLOW",
        4,
        "Extra PostgreSQL connections one process may open at peaks, closed again after use.",
        low=0,
    )
    db_pool_timeout: float = _setting(
        "DOCSCHAT_DB_POOL_TIMEOUT",
        10.0,
        "Seconds a request waits for a free pooled connection before it answers 503.",
        above=0,
    )
    db_processes: int = _setting(
        "DOCSCHAT_DB_PROCESSES",
        6,
        "docschat processes sharing the database, on every host (each gunicorn worker counts); "
        "at start each process warns when they may open more than max_connections.",
        low=1,
    )
    api: str = _setting(
        "DOCSCHAT_API",
        "",
        "Upstream API: `responses` or `assistants`; empty means what `docschat setup` "
        "detected, else `responses` for api.openai.com.",
        choices=("responses", "assistants"),
        allowed="one of: responses, assistants (or empty to detect)",
    )
    model: str = _setting("DOCSCHAT_MODEL", "gpt-4.1-mini", "Model that writes the answers.")
    instructions: str = _setting(
        "DOCSCHAT_INSTRUCTIONS",
        "You answer questions about this product's documentation. Use only the documentation "
        "found with file search, cite it, and keep answers brief. If the documentation does "
        "not cover a question, say so.",
        "Instructions given to the model with every answer.",
    )
    site_name: str = _setting(
        "DOCSCHAT_SITE_NAME",
        "",
        "The docs' name in /llms.txt; empty: the title of the shallowest stored page.",
    )
    site_summary: str = _setting(
        "DOCSCHAT_SITE_SUMMARY", "", "One line about the docs, quoted under the name in /llms.txt."
    )
    streaming: bool = _setting(
        "DOCSCHAT_STREAMING", True, "Stream answers token by token; polling stays the fallback."
    )
    poll_min_interval: float = _setting(
        "DOCSCHAT_POLL_MIN_INTERVAL",
        0.1,
        "Shortest wait in seconds between two polls of a run.",
        above=0,
    )
    poll_max_interval: float = _setting(
        "DOCSCHAT_POLL_MAX_INTERVAL",
        5.0,
        "Longest wait in seconds between two polls of a run.",
        above=0,
    )
    run_estimate: float = _setting(
        "DOCSCHAT_RUN_ESTIMATE",
        2.0,
        "First guess in seconds of how long a run takes, until runs have been measured.",
        above=0,
    )
    tick_interval: float = _setting(
        "DOCSCHAT_TICK_INTERVAL",
        1.0,
        "Seconds between worker sweeps when nothing is due sooner.",
        above=0,
    )
    sync_interval: float = _setting(
        "DOCSCHAT_SYNC_INTERVAL",
        0.0,
        "How often the worker re-syncs every recorded source (seconds, or 90s, 15m, 6h, 1d); "
        "0 turns scheduled re-syncs off.",
        read=_duration,
    )
    answer_deadline: float = _setting(
        "DOCSCHAT_ANSWER_DEADLINE",
        120.0,
        "Seconds after which an unfinished answer ends as an error.",
        above=0,
    )
    lease_seconds: float = _setting(
        "DOCSCHAT_LEASE_SECONDS",
        30.0,
        "How long a worker owns a claimed job before others may take it.",
        above=0,
    )
    worker_threads: int = _setting(
        "DOCSCHAT_WORKER_THREADS", 32, "Answer jobs one worker process runs at once.", low=1
    )
    upstream_timeout: float = _setting(
        "DOCSCHAT_UPSTREAM_TIMEOUT", 20.0, "Seconds to wait for one upstream request.", above=0
    )
    stream_stall: float = _setting(
        "DOCSCHAT_STREAM_STALL",
        15.0,
        "Seconds without a stream event before falling back to polling.",
        above=0,
    )
    max_question_chars: int = _setting(
        "DOCSCHAT_MAX_QUESTION_CHARS", 4000, "Longest question accepted, in characters.", low=1
    )
    max_queued_per_session: int = _setting(
        "DOCSCHAT_MAX_QUEUED", 3, "Unanswered questions one session may have waiting.", low=1
    )
    history_chars: int = _setting(
        "DOCSCHAT_HISTORY_CHARS",
        6000,
        "Characters of recent history sent to seed a new upstream conversation.",
        low=0,
    )
    context_turns: int = _setting(
        "DOCSCHAT_CONTEXT_TURNS",
        12,
        "Newest messages of a conversation the model reads (Assistants); Responses mode lets "
        "the upstream truncate automatically.",
        low=1,
    )
    max_answer_tokens: int = _setting(
        "DOCSCHAT_MAX_ANSWER_TOKENS",
        1000,
        "Longest answer the model may write, in tokens.",
        low=1,
    )
    allowed_origins: str = _setting(
        "DOCSCHAT_ALLOWED_ORIGINS",
        "",
        "Comma-separated origins (https://docs.example.com) allowed to embed the widget and "
        "call the API; empty allows only the proxy's own origin.",
        read=_origins,
    )
    admin_token: str = _setting(
        "DOCSCHAT_ADMIN_TOKEN",
        "",
        "Bearer token for operator endpoints; empty turns them off.",
        secret=True,
    )
    mcp_token: str = _setting(
        "DOCSCHAT_MCP_TOKEN",
        "",
        "Bearer token the MCP server at /mcp requires; empty: open, like the docs.",
        secret=True,
    )
    retention_days: int = _setting(
        "DOCSCHAT_RETENTION_DAYS",
        0,
        "Delete conversations whose last message is older than this many days (a daily job "
        "of the worker); 0 keeps them forever.",
        low=0,
    )
    handoff_url: str = _setting(
        "DOCSCHAT_HANDOFF_URL",
        "",
        'Where "Contact support" leads, offered under an answer without a source and after a '
        "thumbs-down; `{question}` is replaced by the reader's question, URL-encoded. Empty: "
        "no hand-off.",
        read=_handoff_url,
    )
    trusted_proxies: int = _setting(
        "DOCSCHAT_TRUSTED_PROXIES",
        0,
        "Reverse proxies in front of the service (for X-Forwarded-For).",
        low=0,
    )
    rate_session_minute: int = _setting(
        "DOCSCHAT_RATE_SESSION_MINUTE", 6, "Questions per session per minute.", low=1
    )
    rate_session_day: int = _setting(
        "DOCSCHAT_RATE_SESSION_DAY", 200, "Questions per session per day.", low=1
    )
    rate_ip_minute: int = _setting(
        "DOCSCHAT_RATE_IP_MINUTE", 20, "Questions per client IP per minute.", low=1
    )
    rate_ip_day: int = _setting(
        "DOCSCHAT_RATE_IP_DAY", 500, "Questions per client IP per day.", low=1
    )
    rate_global_minute: int = _setting(
        "DOCSCHAT_RATE_GLOBAL_MINUTE", 600, "Questions per minute across all readers.", low=1
    )
    daily_answer_cap: int = _setting(
        "DOCSCHAT_DAILY_ANSWERS",
        5000,
        "Answers per day across all readers (0 = no cap).",
        low=0,
    )
    daily_token_cap: int = _setting(
        "DOCSCHAT_DAILY_TOKENS",
        5_000_000,
        "Upstream tokens per day across all readers (0 = no cap).",
        low=0,
    )
    rate_search_minute: int = _setting(
        "DOCSCHAT_RATE_SEARCH_MINUTE",
        60,
        "Searches (the widget's search box, the MCP search tool) per client IP per minute; "
        "all clients together may make 20 times as many.",
        low=1,
    )
    ws_per_ip: int = _setting("DOCSCHAT_WS_PER_IP", 50, "Open WebSockets per client IP.", low=1)
    ws_per_session: int = _setting(
        "DOCSCHAT_WS_PER_SESSION", 5, "Open WebSockets per session.", low=1
    )
    redis_url: str = _setting(
        "REDIS_URL",
        "",
        "Redis for shared rate counters and cross-process events (optional).",
        read=_redis_url,
    )
    run_worker: bool = _setting(
        "DOCSCHAT_RUN_WORKER", True, "Run the answer worker inside the web process (`serve`)."
    )
    port: int = _setting(
        "PORT",
        8000,
        "Port of `docschat serve` (its `--port` wins) and of the Procfile's web process; "
        "platforms set it.",
        low=0,
        high=65535,
    )
    web_concurrency: int = _setting(
        "WEB_CONCURRENCY",
        2,
        "gunicorn worker processes of the Procfile's web process (`docschat serve` runs one).",
        low=1,
    )
    web_threads: int = _setting(
        "DOCSCHAT_WEB_THREADS",
        1000,
        "Threads of one web worker; every open WebSocket holds one.",
        low=1,
    )
    header_timeout: float = _setting(
        "DOCSCHAT_HEADER_TIMEOUT",
        10.0,
        "Seconds a client has to send a request's headers before the web server closes "
        "its connection.",
        above=0,
    )
    log_json: bool = _setting(
        "DOCSCHAT_LOG_JSON",
        False,
        "Write every log line (gunicorn's access and error logs too) as one JSON object.",
    )
    log_level: str = _setting(
        "DOCSCHAT_LOG_LEVEL",
        "INFO",
        "Log level: DEBUG, INFO, WARNING, ERROR or CRITICAL.",
        choices=LOG_LEVELS,
    )
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
        """Read settings from the environment (or `env`), then apply `overrides`.

        Raises SettingError listing every value that is not allowed; an empty variable means
        the default."""
        source = os.environ if env is None else env
        values: dict[str, Any] = {}
        problems: list[str] = []
        for f in fields(cls):
            raw = source.get(f.metadata["env"])
            if raw is None or raw == "":
                continue
            try:
                values[f.name] = _read(f, raw)
            except ValueError as exc:
                problems.append(f"{f.metadata['env']}={_shown_raw(f, raw)} is not {exc}")
        if problems:
            raise SettingError(problems)
        settings = cls(**{**values, **overrides})
        if settings.poll_min_interval > settings.poll_max_interval:
            raise SettingError(
                [
                    f"DOCSCHAT_POLL_MIN_INTERVAL={settings.poll_min_interval} is above "
                    f"DOCSCHAT_POLL_MAX_INTERVAL={settings.poll_max_interval}"
                ]
            )
        return settings

    def with_(self, **changes: Any) -> Settings:
        """A copy with some settings changed."""
        return replace(self, **changes)

    @property
    def origins(self) -> list[str]:
        """Allowed embedding origins as a list."""
        return [o.strip().rstrip("/") for o in self.allowed_origins.split(",") if o.strip()]


def _read(f: Field[Any], raw: str) -> Any:
    """One environment string as the setting's value; ValueError says what is allowed."""
    meta = f.metadata
    kind = type(f.default)
    allowed = meta["allowed"] or _allowed(f)
    if meta["read"] is not None:
        try:
            return meta["read"](raw)
        except ValueError as exc:
            raise ValueError(meta["allowed"] or str(exc)) from None
    text = raw.strip()
    if kind is bool:
        if text.lower() in TRUE | FALSE:
            return text.lower() in TRUE
        raise ValueError(allowed)
    if meta["choices"]:
        chosen = [c for c in meta["choices"] if c.lower() == text.lower()]
        if not chosen:
            raise ValueError(allowed)
        return chosen[0]
    if kind is str:
        return raw
    try:
        number = kind(text)
    except ValueError:
        raise ValueError(allowed) from None
    if (
        not math.isfinite(number)
        or (meta["low"] is not None and number < meta["low"])
        or (meta["above"] is not None and number <= meta["above"])
        or (meta["high"] is not None and number > meta["high"])
    ):
        raise ValueError(allowed)
    return number


def _allowed(f: Field[Any]) -> str:
    """What a setting accepts, in words: "a whole number of at least 1"."""
    meta = f.metadata
    kind = type(f.default)
    if kind is bool:
        return "a boolean: 1/0, true/false, yes/no or on/off"
    if meta["choices"]:
        return "one of: " + ", ".join(meta["choices"])
    noun = "a whole number" if kind is int else "a number"
    low, above, high = meta["low"], meta["above"], meta["high"]
    if low is not None and high is not None:
        return f"{noun} from {low:g} to {high:g}"
    if low is not None:
        return f"{noun} of at least {low:g}"
    if above is not None:
        return f"{noun} above {above:g}"
    return noun


def _shown_raw(f: Field[Any], raw: str) -> str:
    """A refused value as the error line shows it: quoted, with any URL password hidden."""
    return "(hidden)" if f.metadata["secret"] else repr(_mask_url(raw))


def _mask_url(value: str) -> str:
    """A URL with its password replaced by ***; anything else unchanged."""
    if "://" not in value or "@" not in value:
        return value
    try:
        return make_url(value.strip()).render_as_string(hide_password=True)
    except ArgumentError:
        return value


def unknown_variables(env: Mapping[str, str] | None = None) -> list[str]:
    """One warning per DOCSCHAT_* variable that is no setting, with the closest known name."""
    source = os.environ if env is None else env
    known = [f.metadata["env"] for f in fields(Settings)]
    # Compared without the shared prefix, which would make every name look alike.
    suffixes = {name.removeprefix(PREFIX): name for name in known if name.startswith(PREFIX)}
    warnings = []
    for name in sorted(source):
        if not name.startswith(PREFIX) or name in known or name in NOT_SETTINGS:
            continue
        close = difflib.get_close_matches(name.removeprefix(PREFIX), suffixes, n=1)
        hint = f"; did you mean {suffixes[close[0]]}?" if close else ""
        warnings.append(f"{name} is not a docschat setting and is ignored{hint}")
    return warnings


def documented() -> list[tuple[str, str, str]]:
    """Every setting as (environment variable, default, help) for docs and checks."""
    return [(f.metadata["env"], str(f.default), f.metadata["help"]) for f in fields(Settings)]


def listing(settings: Settings) -> list[tuple[str, str, str]]:
    """Every setting as (environment variable, default, current value), secrets masked."""
    return [
        (f.metadata["env"], str(f.default), _shown(f, getattr(settings, f.name)))
        for f in fields(Settings)
    ]


def _shown(f: Field[Any], value: Any) -> str:
    """A current value as `docschat settings` prints it: secrets as ***, URL passwords hidden."""
    if f.metadata["secret"]:
        return "***" if value else ""
    return _mask_url(str(value))
