"""Log setup: plain lines for people, or one JSON object per line for log collectors."""

from __future__ import annotations

import json
import logging
import time

from proxy.config import Settings


class JsonFormatter(logging.Formatter):
    """One JSON object per record, carrying the request id when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(entry)


def configure(settings: Settings) -> None:
    """Configure the root logger once for a command."""
    handler = logging.StreamHandler()
    if settings.log_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for noisy in ("httpx", "httpx2", "apscheduler", "werkzeug", "openai", "httpcore", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
