"""Commands the README promises: `db upgrade`, `emulator`, the Procfile's gunicorn web process,
the loud start-up warning of a public deployment without allowed origins, `--version`, help on
every command and flag, and a refused API key explained."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import httpx

from proxy.cli.main import parser
from tests.support import ROOT, free_port, run_docschat, wait_until


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "DOCSCHAT_LOG_LEVEL": "INFO", **extra}


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(10)


def test_db_upgrade_creates_the_schema_and_is_repeatable(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, inspect

    url = f"sqlite:///{tmp_path / 'up.db'}"
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-m", "proxy.cli", "db", "upgrade"],
            env=_env(DATABASE_URL=url),
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0 and "up to date" in done.stdout, done.stderr
    tables = set(inspect(create_engine(url)).get_table_names())
    assert {"messages", "answer_jobs", "documents", "sessions", "alembic_version"} <= tables


def test_emulator_command_serves_the_chosen_api(tmp_path: Path) -> None:
    port = free_port()
    proc = _start(
        [sys.executable, "-m", "proxy.cli", "emulator", "--port", str(port), "--api", "responses",
         "--latency-ms", "50"],
        _env(),
        tmp_path / "emulator.log",
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": "Bearer sk-test"}
    try:
        wait_until(lambda: _answers(f"{base}/_emulator/health"), timeout=20)
        assert httpx.get(f"{base}/v1/assistants", headers=headers).status_code == 404
        made = httpx.post(f"{base}/v1/conversations", headers=headers, json={})
        assert made.status_code == 200 and made.json()["id"].startswith("conv_")
        stats = httpx.get(f"{base}/_emulator/stats").json()["requests"]
        assert stats["POST /v1/conversations"] == 1
    finally:
        _stop(proc)


def test_procfile_web_process_runs_under_gunicorn(tmp_path: Path) -> None:
    port = free_port()
    env = _env(PORT=str(port), WEB_CONCURRENCY="1", DATABASE_URL=f"sqlite:///{tmp_path / 'g.db'}")
    proc = _start(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        env,
        tmp_path / "gunicorn.log",
    )
    try:
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), timeout=30)
        r = httpx.post(f"http://127.0.0.1:{port}/api/sessions")
        assert r.status_code == 201 and len(r.json()["session_id"]) >= 43
    finally:
        _stop(proc)


def test_public_start_without_allowed_origins_warns_loudly(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    env = _env(
        DOCSCHAT_PUBLIC="1",
        DOCSCHAT_ALLOWED_ORIGINS="",
        DOCSCHAT_RUN_WORKER="0",
        DATABASE_URL=f"sqlite:///{tmp_path / 'p.db'}",
    )
    proc = _start([sys.executable, "-m", "proxy.cli", "serve", "--port", str(port)], env, log)
    try:
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), timeout=30)
        text = log.read_text()
        assert "DOCSCHAT_ALLOWED_ORIGINS" in text and "SECURITY" in text
    finally:
        _stop(proc)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _docschat(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_docschat(*args, env={"DOCSCHAT_LOG_LEVEL": "INFO", **env})


def test_version_is_the_installed_distributions() -> None:
    done = _docschat("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"docschat {version('docschat')}"


def test_every_command_and_flag_has_help_and_flags_show_their_defaults() -> None:
    top = parser()
    commands = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    described = {c.dest: c.help for c in commands._choices_actions}
    assert set(described) == set(commands.choices)
    for name, command in commands.choices.items():
        assert described[name], f"`docschat {name}` has no help"
        shown = _docschat(name, "--help")
        assert shown.returncode == 0, shown.stderr
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            flag = "/".join(action.option_strings) or action.dest
            assert action.help, f"`docschat {name}` {flag} has no help"
            if action.default not in (None, False, [], argparse.SUPPRESS):
                assert f"(default: {action.default})" in " ".join(shown.stdout.split()), (
                    f"`docschat {name} --help` does not show the default of {flag}"
                )


def test_a_refused_api_key_says_which_settings_to_check(
    tmp_path: Path, refusing_upstream: str
) -> None:
    done = _docschat(
        "setup",
        OPENAI_API_KEY="sk-wrong",
        OPENAI_BASE_URL=refusing_upstream,
        DOCSCHAT_API="assistants",
        DATABASE_URL=f"sqlite:///{tmp_path / 'k.db'}",
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "401" in lines[0] and "OPENAI_API_KEY" in lines[0] and "OPENAI_BASE_URL" in lines[0]
    assert "sk-wrong" not in done.stderr
