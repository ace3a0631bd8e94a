"""The job queue on a real database: what is claimable, and when the worker should look again."""

from __future__ import annotations

from datetime import timedelta

from proxy.answers.jobs import JobStore, overdue
from proxy.config import Settings
from proxy.services import build
from proxy.storage.models import utcnow


def test_a_leased_job_is_not_due_again_until_its_lease_ends(db_url: str) -> None:
    """A job being streamed or started must not make the worker tick again and again."""
    services = build(Settings.from_env({}, database_url=db_url), with_worker=False)
    db, chat = services.db, services.chat
    try:
        sid = chat.create_session()
        chat.ask(sid, "How do I install docschat?")
        chat.ask(sid, "And how do I upgrade it?")  # waits behind the first, in order
        store = JobStore(db, "host:1:abc", lease_seconds=30)

        (job,) = store.claim(10)  # only the first question of the session is claimable
        assert store.claim(10) == []

        due = store.next_due()
        assert due is not None
        assert due >= utcnow() + timedelta(seconds=25), "the lease holder's job looks due now"

        # Once the first answer is given back for a poll in 2 s, that is the next time to look.
        store.release(job.id, utcnow() + timedelta(seconds=2))
        due = store.next_due()
        assert due is not None
        assert timedelta(seconds=1) < due - utcnow() <= timedelta(seconds=2)
    finally:
        services.close()


def test_overdue_counts_late_jobs_but_not_ones_a_worker_holds(db_url: str) -> None:
    """The /metrics gauge: a job being streamed is busy, a job nobody picked up is late."""
    services = build(Settings.from_env({}, database_url=db_url), with_worker=False)
    db, chat = services.db, services.chat
    try:
        chat.ask(chat.create_session(), "How do I install docschat?")
        store = JobStore(db, "host:1:abc", lease_seconds=30)
        (job,) = store.claim(10)
        store.release(job.id, utcnow() - timedelta(seconds=10))  # given back, then forgotten
        assert overdue(db, 5.0) == 1
        (job,) = store.claim(10)  # a worker holds it again (its poll time is still past)
        assert overdue(db, 5.0) == 0
    finally:
        services.close()
