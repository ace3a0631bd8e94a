"""Log setup: plain lines for people, or one JSON object per line (python-json-logger) for log
collectors, the same in every process: `docschat` commands, and gunicorn's master, workers,
access log and error log.

A line written while an HTTP request is served carries its request id (`request_id`), and so
does gunicorn's access line for it (from the X-Request-Id header of the response).
"""

from __future__ import annotations

import logging
import logging.config
import re
from contextvars import ContextVar
from typing import Any

from proxy.config import Settings

# The id of the HTTP request the current thread serves; set by the web layer for each request.
REQUEST_ID: ContextVar[str | None] = ContextVar("docschat_request_id", default=None)
NOISY = ("httpx", "httpx2", "httpcore", "apscheduler", "werkzeug", "openai", "alembic")
# gunicorn's access line: client, method, path (no query), status, bytes, milliseconds, user
# agent, and the request id the app put on the response.
ACCESS_FORMAT = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms "%(a)s" %({x-request-id}o)s'
# A session id works as a bearer secret (docs/security.md): access lines show this instead.
SESSION_IN_PATH = re.compile(r"^/api/sessions/[^/]+")
PLAIN = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ISO_LOCAL = "%Y-%m-%dT%H:%M:%S%z"


class RequestContext(logging.Filter):
    """Adds the current HTTP request's id to a record that does not carry one already."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keeps the record."""
        if getattr(record, "request_id", None) is None:
            request_id = REQUEST_ID.get()
            if request_id is not None:
                record.request_id = request_id
        return True


class AccessFields(logging.Filter):
    """Copies gunicorn's access-log values into fields of the record (request id, status...)."""

    FIELDS = {
        "request_id": "{x-request-id}o",
        "method": "m",
        "path": "U",
        "status": "s",
        "duration_ms": "M",
        "remote_addr": "h",
    }

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keeps the record (with the session id taken out of its path)."""
        atoms = record.args
        if isinstance(atoms, dict):
            path = atoms["U"]
            if isinstance(path, str):
                atoms["U"] = SESSION_IN_PATH.sub("/api/sessions/<sid>", path)
            for field, atom in self.FIELDS.items():
                value = atoms[atom]
                if value not in (None, "-"):
                    setattr(record, field, _number(value) if field != "request_id" else value)
        return True


def _number(value: Any) -> Any:
    """An integer-looking access value as an int (status, milliseconds), anything else as is."""
    return int(value) if isinstance(value, str) and value.isdigit() else value


def dict_config(settings: Settings, *, gunicorn: bool = False) -> dict[str, Any]:
    """The logging.config.dictConfig of a docschat process; with `gunicorn`, gunicorn's own
    error log (stderr) and access log (stdout) too."""
    if settings.log_json:
        formatter: dict[str, Any] = {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": ["levelname", "name", "process", "message"],
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",  # ISO 8601 in UTC, with its offset
        }
    else:
        formatter = {"format": PLAIN, "datefmt": ISO_LOCAL}
    level = settings.log_level.upper()
    config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request": {"()": RequestContext}, "access": {"()": AccessFields}},
        "formatters": {"docschat": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "docschat",
                "filters": ["request"],
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {name: {"level": "WARNING"} for name in NOISY},
    }
    if gunicorn:
        config["handlers"]["access"] = {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "docschat",
            "filters": ["access"],
        }
        config["loggers"]["gunicorn.error"] = {
            "level": level,
            "handlers": ["stderr"],
            "propagate": False,
        }
        config["loggers"]["gunicorn.access"] = {
            "level": "INFO",
            "handlers": ["access"],
            "propagate": False,
        }
    return config


def configure(settings: Settings, *, gunicorn: bool = False) -> None:
    """Configure logging for this process (warnings from the warnings module included)."""
    logging.config.dictConfig(dict_config(settings, gunicorn=gunicorn))
    logging.captureWarnings(True)
