"""Fixtures for the emulator tests: a fast emulator, an SDK client and two uploaded doc pages."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import pytest
from emulator_helpers import Docs, sdk, upload_docs
from openai import OpenAI

from emulator.server import RunningEmulator


@pytest.fixture
def run_emulator(start_emulator: Callable[..., RunningEmulator]) -> Callable[..., RunningEmulator]:
    """The suite's emulator starter, answering after 100 ms unless told otherwise."""
    return lambda **options: start_emulator(**{"latency_ms": 100, **options})


@pytest.fixture
def emu(run_emulator: Callable[..., RunningEmulator]) -> RunningEmulator:
    """An emulator answering after 100 ms, all text at once."""
    return run_emulator()


@pytest.fixture
def client(emu: RunningEmulator) -> OpenAI:
    """The SDK pointed at `emu`."""
    return sdk(emu)


@pytest.fixture
def docs(client: OpenAI) -> Docs:
    """The sample pages, uploaded to `emu`."""
    return upload_docs(client)


@pytest.fixture
def assistant_id(client: OpenAI, docs: Docs) -> str:
    """An assistant with file_search over the sample pages."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return client.beta.assistants.create(
            model="gpt-4.1-mini",
            instructions="Answer from the docs.",
            tools=[{"type": "file_search"}],
            tool_resources={"file_search": {"vector_store_ids": [docs.vector_store_id]}},
        ).id
