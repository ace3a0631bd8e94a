"""JSON routes: parse the request, call the chat domain, shape the answer."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request

from proxy.answers.chat import Chat
from proxy.web.params import json_body, whole

api = Blueprint("api", __name__, url_prefix="/api")
log = logging.getLogger(__name__)


def _chat() -> Chat:
    return current_app.extensions["docschat"].chat


@api.post("/sessions")
def create_session() -> Any:
    """Start a conversation."""
    return jsonify(session_id=_chat().create_session(g.client_ip)), 201


@api.get("/sessions/<sid>/messages")
def list_messages(sid: str) -> Any:
    """The conversation so far (or after a message id)."""
    return jsonify(
        messages=_chat().messages(sid, whole("after", 0, "a message id (a whole number)"))
    )


@api.post("/sessions/<sid>/messages")
def ask(sid: str) -> Any:
    """Ask a question; the answer arrives later as a message."""
    message = _chat().ask(sid, json_body().get("text"), g.client_ip, g.request_id)
    current_app.extensions["docschat"].metrics.question()
    log.info("question %s accepted", message["id"], extra={"request_id": g.request_id})
    return jsonify(message=message), 202


@api.delete("/sessions/<sid>")
def clear(sid: str) -> Any:
    """Clear the conversation here and upstream."""
    _chat().clear(sid)
    return "", 204


@api.post("/sessions/<sid>/messages/<int:mid>/feedback")
def feedback(sid: str, mid: int) -> Any:
    """Rate an answer."""
    body = json_body()
    return jsonify(feedback=_chat().feedback(sid, mid, body.get("rating"), body.get("comment")))


@api.post("/sessions/<sid>/messages/<int:mid>/stop")
def stop(sid: str, mid: int) -> Any:
    """Stop an answer that is still being written."""
    return jsonify(message=_chat().stop(sid, mid))


@api.post("/sessions/<sid>/messages/<int:mid>/retry")
def retry(sid: str, mid: int) -> Any:
    """Ask a failed answer's question again."""
    return jsonify(message=_chat().retry(sid, mid, g.client_ip, g.request_id)), 202


@api.get("/search")
def search() -> Any:
    """The docs' best pages for a few words, as the reader types (no answer is written)."""
    services = current_app.extensions["docschat"]
    limit = whole("limit", 5, "a whole number from 1 to 10")
    results = services.search.find(request.args.get("q"), limit, g.client_ip)
    return jsonify(results=[r.as_dict() for r in results])


@api.post("/sessions/<sid>/handoff")
def handoff(sid: str) -> Any:
    """Count a "Contact support" link the widget showed (offered) or the reader opened
    (followed)."""
    _chat().handoff(sid, json_body().get("event"))
    return "", 204
