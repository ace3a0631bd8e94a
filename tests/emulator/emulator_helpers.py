"""Helpers of the emulator tests: sample docs, an SDK client, and waiting for runs to end."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from openai import OpenAI

from emulator.server import RunningEmulator
from tests.support import wait_until

INSTALL = (
    "# Installing\n\nInstall the package with pip install docschat. Then run docschat demo "
    "to start the local demo on port 8000.\n\n## Upgrading\n\nRun pip install --upgrade "
    "docschat to get the newest release."
)
CONFIG = (
    "# Configuration\n\nThe DATABASE_URL setting chooses the database. PostgreSQL is supported "
    "for many processes; SQLite is the default file.\n\nThe DOCSCHAT_MODEL setting names the "
    "model that answers questions."
)
RUNNING = ("queued", "in_progress", "cancelling")


@dataclass
class Docs:
    """The uploaded pages and the vector store holding them."""

    vector_store_id: str
    install_id: str
    config_id: str


def sdk(emu: RunningEmulator) -> OpenAI:
    """An SDK client for the emulator that does not retry (faults stay visible)."""
    return OpenAI(api_key="sk-test", base_url=emu.base_url, max_retries=0, timeout=10)


def upload_docs(client: OpenAI) -> Docs:
    """Upload the two sample pages into a new vector store, with url attributes."""
    install = client.files.create(file=("install.md", INSTALL.encode()), purpose="assistants")
    config = client.files.create(file=("config.md", CONFIG.encode()), purpose="assistants")
    store = client.vector_stores.create(name="docs")
    client.vector_stores.file_batches.create(
        store.id,
        files=[
            {"file_id": install.id, "attributes": {"url": "http://docs.test/install"}},
            {"file_id": config.id, "attributes": {"url": "http://docs.test/config"}},
        ],
    )
    return Docs(store.id, install.id, config.id)


def finished_run(client: OpenAI, thread_id: str, run_id: str, timeout: float = 10.0) -> Any:
    """Poll a run until it leaves queued/in_progress."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)

        def check() -> Any:
            run = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
            return run if run.status not in RUNNING else None

        return wait_until(check, timeout)


def asked_and_finished(client: OpenAI, assistant_id: str, question: str) -> Any:
    """Ask on a new thread (create_and_run) and wait for the run to end; returns the run."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        run = client.beta.threads.create_and_run(
            assistant_id=assistant_id,
            thread={"messages": [{"role": "user", "content": question}]},
        )
    return finished_run(client, run.thread_id, run.id)


def finished_response(client: OpenAI, response_id: str, timeout: float = 10.0) -> Any:
    """Poll a response until it leaves queued/in_progress."""

    def check() -> Any:
        response = client.responses.retrieve(response_id)
        return response if response.status not in RUNNING else None

    return wait_until(check, timeout)
