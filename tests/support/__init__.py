"""Helpers shared by the tests and the benchmarks: no fixtures here (conftest files hold those,
built on these), and no pytest import, so the benchmarks can use them too.

Import from `tests.support`: the modules below only group the helpers by topic.
"""

from tests.support.databases import (
    PG_ADMIN,
    PG_BASE,
    PG_USER,
    PrivatePostgres,
    new_pg_database,
    pg_schema,
    query,
)
from tests.support.emulator import (
    add_faults,
    emulator_requests,
    emulator_stats,
    reset_emulator_stats,
)
from tests.support.live import Inbox, Live, live_env
from tests.support.processes import DOCSCHAT, ROOT, docschat, free_port, run_docschat, spawn
from tests.support.stack import API_KEY, SAMPLE_DOCS, STACK_ENV, Stack, provision, upload_doc
from tests.support.waits import answers_200, printed, wait_http, wait_until
from tests.support.ws import Listener

__all__ = [
    "API_KEY",
    "DOCSCHAT",
    "PG_ADMIN",
    "PG_BASE",
    "PG_USER",
    "ROOT",
    "SAMPLE_DOCS",
    "STACK_ENV",
    "Inbox",
    "Listener",
    "Live",
    "PrivatePostgres",
    "Stack",
    "add_faults",
    "answers_200",
    "docschat",
    "emulator_requests",
    "emulator_stats",
    "free_port",
    "live_env",
    "new_pg_database",
    "pg_schema",
    "printed",
    "provision",
    "query",
    "reset_emulator_stats",
    "run_docschat",
    "spawn",
    "upload_doc",
    "wait_http",
    "wait_until",
]
