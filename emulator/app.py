"""The emulator's Flask app: auth, API selection, faults, stats, timings and error shapes."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from emulator import assistants, files, responses
from emulator.errors import ApiError, invalid
from emulator.faults import HTTP_KINDS, parse_faults
from emulator.options import EmulatorOptions
from emulator.state import State, json_body, now

ASSISTANTS_PREFIXES = ("/v1/assistants", "/v1/threads")
RESPONSES_PREFIXES = ("/v1/responses", "/v1/conversations")

log = logging.getLogger(__name__)


def _template() -> str:
    """The request's path with ids replaced by their names, e.g. /v1/threads/{thread_id}/runs."""
    if request.url_rule is None:
        return request.path
    return request.url_rule.rule.replace("<", "{").replace(">", "}")


def _error(err: ApiError) -> Response:
    response = jsonify(err.body())
    response.status_code = err.status
    for name, value in err.headers.items():
        response.headers[name] = value
    return response


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def create_app(options: EmulatorOptions) -> Flask:
    """A Flask app emulating the parts of OpenAI's API that docschat uses."""
    app = Flask("emulator")
    st = State(options)
    app.extensions["emulator"] = st
    app.register_blueprint(files.bp)
    app.register_blueprint(assistants.bp)
    app.register_blueprint(responses.bp)

    @app.before_request
    def gate() -> Any:
        """Count, authenticate, hide the API generation not served, and apply HTTP faults."""
        path = request.path
        if not path.startswith("/v1/") and path != "/v1":
            return None
        with st.lock:
            st.stats[f"{request.method} {_template()}"] += 1
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            raise ApiError(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        hidden = (options.api == "responses" and _under(path, ASSISTANTS_PREFIXES)) or (
            options.api == "assistants" and _under(path, RESPONSES_PREFIXES)
        )
        if hidden:
            raise ApiError(404, f"Invalid URL ({request.method} {path})")
        lines = (f"{request.method} {path}", f"{request.method} {_template()}")
        fault = st.faults.take(HTTP_KINDS, *lines)
        if fault is None:
            return None
        if fault.kind == "hang":
            st.stopping.wait(float(fault.options.get("seconds", 30)))
            return None
        if fault.kind == "late":
            g.late_seconds = float(fault.options.get("seconds", 30))
            return None
        if fault.kind == "http_429":
            retry = fault.options.get("retry_after")
            headers = {"Retry-After": str(retry)} if retry is not None else {}
            message = "Rate limit reached. Please try again later."
            if retry is not None:
                message = f"Rate limit reached. Please try again in {retry}s."
            raise ApiError(
                429, message, type="requests", code="rate_limit_exceeded", headers=headers
            )
        raise ApiError(
            500,
            "The server had an error while processing your request. Sorry about that!",
            type="server_error",
        )

    @app.after_request
    def late(response: Response) -> Response:
        """Hold a served answer back, as a slow network would (the "late" fault)."""
        seconds = g.pop("late_seconds", None)
        if seconds:
            st.stopping.wait(seconds)
        return response

    @app.errorhandler(ApiError)
    def api_error(err: ApiError) -> Response:
        return _error(err)

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException) -> Response:
        code = err.code or 500
        if code == 404 or code == 405:
            message = f"Invalid URL ({request.method} {request.path})"
            return _error(ApiError(code, message))
        if code == 413:
            return _error(ApiError(413, "Request too large."))
        return _error(ApiError(code, err.description or err.name))

    @app.errorhandler(Exception)
    def unexpected(err: Exception) -> Response:
        log.exception("emulator error on %s %s", request.method, request.path)
        return _error(
            ApiError(
                500,
                "The server had an error while processing your request. Sorry about that!",
                type="server_error",
            )
        )

    @app.get("/_emulator/stats")
    def stats() -> Any:
        """Requests counted per method and path template."""
        with st.lock:
            counts = dict(sorted(st.stats.items()))
        return {"requests": counts, "total": sum(counts.values())}

    @app.post("/_emulator/stats/reset")
    def reset_stats() -> Any:
        """Zero the request counters."""
        with st.lock:
            st.stats.clear()
        return {"requests": {}, "total": 0}

    @app.get("/_emulator/faults")
    def pending_faults() -> Any:
        """Faults still waiting for a request."""
        return {"faults": st.faults.pending()}

    @app.post("/_emulator/faults")
    def add_faults() -> Any:
        """Queue faults for the next matching requests."""
        st.faults.add(parse_faults(json_body()))
        return {"faults": st.faults.pending()}

    @app.delete("/_emulator/faults")
    def clear_faults() -> Any:
        """Drop every queued fault."""
        st.faults.clear()
        return {"faults": []}

    @app.post("/_emulator/answers")
    def add_answers() -> Any:
        """Answer questions containing `match` with `text`, verbatim (rich markdown for tests)."""
        items = json_body().get("answers")
        valid = isinstance(items, list) and all(
            isinstance(i, dict)
            and isinstance(i.get("match"), str)
            and isinstance(i.get("text"), str)
            for i in items
        )
        if not valid:
            raise invalid("`answers` must be a list of {match, text} strings.", param="answers")
        with st.lock:
            st.scripts.extend((i["match"], i["text"]) for i in items)
            return {"answers": len(st.scripts)}

    @app.delete("/_emulator/answers")
    def clear_answers() -> Any:
        """Forget every scripted answer."""
        with st.lock:
            st.scripts.clear()
        return {"answers": 0}

    @app.get("/_emulator/timings")
    def timings() -> Any:
        """Per run/response: when it was created, produced its first token and finished."""
        with st.lock:
            at = now()
            return {
                job_id: {
                    "created": job.created,
                    "first_token": job.first_token_time(at),
                    "completed": job.terminal_time(at),
                }
                for job_id, job in st.jobs.items()
            }

    @app.get("/_emulator/health")
    def health() -> Any:
        """Liveness for scripts waiting on the emulator."""
        return {"ok": True, "api": options.api}

    return app
