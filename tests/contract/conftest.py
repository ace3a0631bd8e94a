"""A validating mock of OpenAI's published API description (@stdy/cli's `steady`) on loopback."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
STEADY = ROOT / ".tools" / "node_modules" / ".bin" / "steady"
# OpenAI's published description sits beside the checkout (../shared); CI may clone elsewhere on
# the same machine, so the workplace's copy and an explicit setting are looked at too.
SPEC_PLACES = [
    Path(os.environ.get("DOCSCHAT_OPENAPI_SPEC", "/nonexistent")),
    ROOT.parent / "shared" / "openai-openapi" / "openapi.yaml",
    Path("/work/shared/openai-openapi/openapi.yaml"),
]
SPEC = next((p for p in SPEC_PLACES if p.is_file()), SPEC_PLACES[1])
FORMATS = [
    f"--validator-{where}-{kind}-format=brackets"
    for where in ("query", "form")
    for kind in ("array", "object")
]


@pytest.fixture(scope="session")
def steady_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a running steady mock (the SDK's base_url: the description has no /v1)."""
    assert STEADY.exists(), "the validator is missing: ./scripts/test installs @stdy/cli"
    assert SPEC.exists(), f"OpenAI's API description is missing (looked at {SPEC_PLACES})"
    port = free_port()
    log = tmp_path_factory.mktemp("steady") / "steady.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(STEADY), "--host", "127.0.0.1", "-p", str(port), *FORMATS, str(SPEC)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"steady exited: {log.read_text()[-2000:]}")
        try:
            return httpx.get(f"{url}/_x-steady/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(healthy, timeout=60, every=0.2)
    yield url
    proc.terminate()
    proc.wait(10)
