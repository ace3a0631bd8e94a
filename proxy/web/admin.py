"""Operator endpoints under /api/admin/: usage, coverage gaps, conversations, behind a token."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from flask.blueprints import BlueprintSetupState
from sqlalchemy import func, select

from proxy.answers import insights
from proxy.answers.reports import gaps_csv, gaps_markdown
from proxy.storage.models import ChatSession, Document, Feedback, Message, utcnow
from proxy.web.errors import ApiError
from proxy.web.params import whole
from proxy.web.security import admin_allowed

log = logging.getLogger(__name__)
admin = Blueprint("admin", __name__, url_prefix="/api/admin")
EXPORT_LIMIT = 1000
MAX_DAYS = 366
PAGE = 50


@admin.record_once
def _announce(state: BlueprintSetupState) -> None:
    """Say at start-up whether the operator endpoints are on."""
    services = state.app.extensions.get("docschat")
    if services is not None and not services.settings.admin_token:
        log.info("operator endpoints are off (set DOCSCHAT_ADMIN_TOKEN to turn them on)")


@admin.before_request
def _authorize() -> None:
    """Off (404) without a configured token; 401 for a missing or wrong one, 429 for a client
    that keeps guessing."""
    services = current_app.extensions["docschat"]
    settings = services.settings
    if not settings.admin_token:
        # Indistinguishable from a route that does not exist: nothing to probe.
        raise ApiError(404, "not_found", "Not found.")
    services.limits.admin_locked(g.client_ip)
    if not admin_allowed(settings):
        if request.headers.get("Authorization"):  # a guess, not a page that has not signed in
            services.limits.admin_failed(g.client_ip)
        raise ApiError(401, "unauthorized", "Send Authorization: Bearer <DOCSCHAT_ADMIN_TOKEN>.")


@admin.after_request
def _private(response: Any) -> Any:
    """Operator figures must never sit in a shared cache."""
    response.headers["Cache-Control"] = "no-store"
    return response


def _services() -> Any:
    return current_app.extensions["docschat"]


def _db() -> Any:
    return _services().db


def _days(default: int = 30) -> int:
    """The `days` query value: how far back to look, 1 to MAX_DAYS."""
    days = whole("days", default, f"a number of days from 1 to {MAX_DAYS}")
    if not 1 <= days <= MAX_DAYS:
        raise ApiError(
            400, "invalid_days", f"`days` must be a number of days from 1 to {MAX_DAYS}."
        )
    return days


def _flag(name: str) -> bool:
    """A query switch: 1/true/yes/on."""
    return request.args.get(name, "").lower() in ("1", "true", "yes", "on")


def _date(name: str) -> date | None:
    """A YYYY-MM-DD query value, or None."""
    raw = request.args.get(name, "")
    if not raw:
        return None
    try:
        found = date.fromisoformat(raw)
    except ValueError:
        found = None
    if found is None or not 1900 <= found.year <= 9000:  # also keeps day arithmetic in range
        raise ApiError(400, f"invalid_{name}", f"`{name}` must be a date as YYYY-MM-DD.")
    return found


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


@admin.get("/overview")
def overview() -> Any:
    """The console's first page: questions per day, outcomes, ratings, pages, times, budget."""
    services = _services()
    days = _days()
    settings = services.settings
    return jsonify(
        **insights.overview(services.db, days),
        today=services.limits.today(),
        handoff=services.limits.handoffs(days),
        settings={
            "retention_days": settings.retention_days,
            "handoff": bool(settings.handoff_url),
        },
    )


@admin.get("/gaps")
def gaps() -> Any:
    """Questions without a source or with a thumbs-down, grouped by topic."""
    since = insights.day_start(utcnow()) - timedelta(days=_days() - 1)
    groups = insights.gaps(_db(), since, include_resolved=_flag("resolved"))
    return jsonify(since=since.isoformat(), groups=[grp.shown() for grp in groups])


@admin.get("/gaps/export")
def gaps_export() -> Any:
    """The open gap groups as CSV or as Markdown for an issue of the docs repository."""
    now = utcnow()
    since = insights.day_start(now) - timedelta(days=_days() - 1)
    groups = insights.gaps(_db(), since)
    kind = request.args.get("format", "csv")
    stamp = now.date().isoformat()
    if kind == "csv":
        body, mimetype, name = gaps_csv(groups), "text/csv", f"docschat-gaps-{stamp}.csv"
    elif kind == "markdown":
        body, mimetype = gaps_markdown(groups, since, now), "text/markdown"
        name = f"docschat-gaps-{stamp}.md"
    else:
        raise ApiError(400, "invalid_format", "`format` must be csv or markdown.")
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@admin.post("/gaps/<group_id>/resolve")
def resolve(group_id: str) -> Any:
    """Mark a gap group resolved; it comes back when its topic is asked about again. The group
    is looked for over the `days` the console listed it in: over a longer window older questions
    may join it, and its id (that of its oldest question) would differ."""
    since = insights.day_start(utcnow()) - timedelta(days=_days() - 1)
    found = insights.resolve(_db(), group_id[:64], since)
    return jsonify(
        id=found.id, resolved_at=found.resolved_at.isoformat() if found.resolved_at else None
    )


@admin.delete("/gaps/<group_id>/resolve")
def reopen(group_id: str) -> Any:
    """Show a resolved group again."""
    insights.reopen(_db(), group_id[:64])
    return "", 204


@admin.get("/conversations")
def conversations() -> Any:
    """Conversations, newest first, filtered; each named by its console id."""
    filters = insights.Filters(
        uncovered=_flag("uncovered"),
        disliked=_flag("disliked"),
        failed=_flag("failed"),
        text=request.args.get("q", "")[:200],
        start=_date("from"),
        end=_date("to"),
    )
    limit = min(whole("limit", PAGE), 200) or PAGE
    return jsonify(insights.conversations(_db(), filters, limit, whole("offset", 0)))


@admin.get("/conversations/<cid>")
def conversation(cid: str) -> Any:
    """One conversation's transcript with its sources, ratings and comments."""
    return jsonify(insights.transcript(_db(), cid[:64]))


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
