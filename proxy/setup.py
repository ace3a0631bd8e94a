"""`docschat setup`: provision the upstream objects and record their ids in the database."""

from __future__ import annotations

from sqlalchemy import select

from proxy.config import Settings
from proxy.storage.db import Database
from proxy.storage.models import Setting
from proxy.upstream.factory import make_client
from proxy.upstream.provision import Provisioned, provision


def recorded(db: Database) -> Provisioned | None:
    """What the last setup recorded, or None before the first."""
    with db.read() as s:
        values = {k: v for k, v in s.execute(select(Setting.key, Setting.value))}
    return Provisioned.from_values(values)


def run_setup(settings: Settings, db: Database) -> Provisioned:
    """Create or verify the upstream objects and record what exists; idempotent."""
    done = provision(settings, make_client(settings), recorded(db))
    with db.session() as s:
        for key, value in done.values().items():
            s.merge(Setting(key=key, value=value))
    return done
