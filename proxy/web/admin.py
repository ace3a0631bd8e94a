"""Operator endpoints under /api/admin/: usage figures and the feedback export, behind a token."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, current_app, jsonify
from flask.blueprints import BlueprintSetupState
from sqlalchemy import func, select

from proxy.storage.models import ChatSession, Document, Feedback, Message
from proxy.web.errors import ApiError
from proxy.web.params import whole
from proxy.web.security import admin_allowed

log = logging.getLogger(__name__)
admin = Blueprint("admin", __name__, url_prefix="/api/admin")
EXPORT_LIMIT = 1000


@admin.record_once
def _announce(state: BlueprintSetupState) -> None:
    """Say at start-up whether the operator endpoints are on."""
    services = state.app.extensions.get("docschat")
    if services is not None and not services.settings.admin_token:
        log.info("operator endpoints are off (set DOCSCHAT_ADMIN_TOKEN to turn them on)")


@admin.before_request
def _authorize() -> None:
    """Off (404) without a configured token; 401 for a missing or wrong one."""
    settings = current_app.extensions["docschat"].settings
    if not settings.admin_token:
        # Indistinguishable from a route that does not exist: nothing to probe.
        raise ApiError(404, "not_found", "Not found.")
    if not admin_allowed(settings):
        raise ApiError(401, "unauthorized", "Send Authorization: Bearer <DOCSCHAT_ADMIN_TOKEN>.")


@admin.after_request
def _private(response: Any) -> Any:
    """Operator figures must never sit in a shared cache."""
    response.headers["Cache-Control"] = "no-store"
    return response


def _db() -> Any:
    return current_app.extensions["docschat"].db


@admin.get("/stats")
def stats() -> Any:
    """Sessions, questions, answers by status, feedback, documents and today's budget use."""
    services = current_app.extensions["docschat"]
    with _db().read() as s:
        sessions = s.scalar(select(func.count()).select_from(ChatSession)) or 0
        questions = s.scalar(select(func.count()).where(Message.role == "user")) or 0
        by_status = dict(
            s.execute(
                select(Message.status, func.count())
                .where(Message.role == "assistant")
                .group_by(Message.status)
            ).all()
        )
        ratings = dict(
            s.execute(select(Feedback.rating, func.count()).group_by(Feedback.rating)).all()
        )
        documents = s.scalar(select(func.count()).select_from(Document)) or 0
    answers = {status: int(by_status.get(status, 0)) for status in _STATUSES}
    return jsonify(
        sessions=int(sessions),
        questions=int(questions),
        answers=answers,
        feedback={"up": int(ratings.get("up", 0)), "down": int(ratings.get("down", 0))},
        documents=int(documents),
        today=services.limits.today(),
    )


_STATUSES = ("pending", "streaming", "done", "error")


@admin.get("/feedback")
def feedback_export() -> Any:
    """Rated answers with their question, oldest first; page with `after` (a feedback id)."""
    after = whole("after", 0)
    limit = min(whole("limit", EXPORT_LIMIT), EXPORT_LIMIT)
    with _db().read() as s:
        rows = s.execute(
            select(Feedback, Message)
            .join(Message, Message.id == Feedback.message_id)
            .where(Feedback.id > after)
            .order_by(Feedback.id)
            .limit(limit)
        ).all()
        # The question is the newest user message before the answer in the same session.
        items = []
        for fb, answer in rows:
            question = s.scalar(
                select(Message.text)
                .where(
                    Message.session_id == answer.session_id,
                    Message.role == "user",
                    Message.id < answer.id,
                )
                .order_by(Message.id.desc())
                .limit(1)
            )
            items.append(
                {
                    # Never the session id: it is the reader's bearer secret.
                    "id": fb.id,
                    "message_id": answer.id,
                    "rating": fb.rating,
                    "comment": fb.comment,
                    "rated_at": fb.created_at.isoformat(),
                    "question": question or "",
                    "answer": answer.text,
                    "sources": answer.sources or [],
                }
            )
    return jsonify(feedback=items, next_after=items[-1]["id"] if items else after)
