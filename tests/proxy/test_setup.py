"""`docschat setup`: detects the upstream API, creates what is missing, changes nothing twice."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from tests.support import API_KEY, ROOT


def _setup(emulator, db_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxy.cli", "setup"],
        env={
            **os.environ,
            "OPENAI_API_KEY": API_KEY,
            "OPENAI_BASE_URL": emulator.base_url,
            "DATABASE_URL": db_url,
            "DOCSCHAT_API": "",
            **env,
        },
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


def _creations(emulator) -> int:
    stats = httpx.get(f"{emulator.url}/_emulator/stats").json()["requests"]
    return stats.get("POST /v1/assistants", 0) + stats.get("POST /v1/vector_stores", 0)


@pytest.mark.parametrize(("served", "chosen"), [("both", "assistants"), ("responses", "responses")])
def test_setup_detects_the_api_and_is_idempotent(start_emulator, tmp_path, served, chosen):
    emulator = start_emulator(api=served)
    db_url = f"sqlite:///{tmp_path / 'setup.db'}"
    first = _setup(emulator, db_url)
    assert first.returncode == 0, first.stderr
    assert f"api: {chosen}" in first.stdout and "created vector store" in first.stdout
    assert ("created assistant" in first.stdout) == (chosen == "assistants")
    made = _creations(emulator)

    again = _setup(emulator, db_url)
    assert again.returncode == 0, again.stderr
    assert "nothing to change" in again.stdout
    assert _creations(emulator) == made


def test_setup_updates_an_assistant_whose_model_changed(start_emulator, tmp_path):
    emulator = start_emulator()
    db_url = f"sqlite:///{tmp_path / 'setup.db'}"
    assert _setup(emulator, db_url).returncode == 0
    changed = _setup(emulator, db_url, DOCSCHAT_MODEL="gpt-4.1")
    assert changed.returncode == 0 and "updated assistant" in changed.stdout


def test_setup_against_an_unreachable_upstream_is_one_clear_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "proxy.cli", "setup"],
        env={
            **os.environ,
            "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
            "DOCSCHAT_API": "assistants",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
            "DOCSCHAT_UPSTREAM_TIMEOUT": "2",
        },
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode != 0
    assert "unreachable" in result.stderr and "Traceback" not in result.stderr
