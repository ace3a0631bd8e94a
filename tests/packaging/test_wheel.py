"""What a user installs is what we test: the wheel, installed into a fresh virtualenv outside the
checkout, serves the widget and runs the demo on the docs it carries."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import API_KEY, ROOT, free_port, wait_until

WIDGET = ROOT / "static" / "widget"
CONSOLE = ROOT / "static" / "admin"
DOCS = ROOT / "docs"
# What a source distribution of docschat holds (the build reads nothing else).
SOURCES = ["pyproject.toml", "README.md", "proxy", "scraper", "emulator", "static", "docs"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `pip install .` would build, made from a copy so the checkout stays clean."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(ROOT / name, source / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)
    out = tmp / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(source)],
        check=True,
        cwd=tmp,
    )
    (built,) = out.glob("docschat-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv outside the checkout with the wheel installed; returns its bin folder.

    The dependencies come from the test environment's site-packages through a .pth file (no
    network, no second download of every dependency). That folder holds no `proxy` package: the
    editable install there maps it to the checkout with an import hook, which a .pth line does
    not load, so `import proxy` finds only the wheel's copy."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         str(wheel)],
        check=True,
        cwd=venv,
    )  # fmt: skip
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # After the install, so pip does not take the test environment's docschat for this one.
    (Path(site) / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin"


def _env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: no PYTHONPATH, so the checkout is not importable."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**env, "DOCSCHAT_LOG_LEVEL": "INFO", **extra}


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    """Start commands of the installed package in a folder outside the checkout."""
    running: list[tuple[subprocess.Popen[bytes], Path]] = []

    def run(args: list[str], **env: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = tmp_path / f"{Path(args[0]).name}-{len(running)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                args, env=_env(**env), stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path
            )
        running.append((proc, log))
        return proc, log

    yield run
    for proc, _log in running:
        proc.terminate()
        proc.wait(10)


def _up(proc: subprocess.Popen[bytes], log: Path, text: str) -> bool:
    if proc.poll() is not None:
        raise AssertionError(f"exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
    return text in log.read_text()


def test_the_wheel_carries_every_module_the_widget_and_the_docs(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in ("proxy", "scraper", "emulator"):
        for module in (ROOT / package).rglob("*.py"):
            if "__pycache__" not in module.parts:
                assert module.relative_to(ROOT).as_posix() in names
    for asset in WIDGET.iterdir():
        assert f"proxy/web/widget/{asset.name}" in names
    for asset in CONSOLE.iterdir():
        assert f"proxy/web/console/{asset.name}" in names
    for page in DOCS.glob("*.md"):
        assert f"proxy/cli/demo_docs/{page.name}" in names
    assert "proxy/storage/migrations/script.py.mako" in names


def test_installed_package_is_the_wheel_not_the_checkout(installed: Path, tmp_path: Path) -> None:
    found = subprocess.run(
        [str(installed / "python"), "-c", "import proxy, scraper; print(proxy.__file__)"],
        env=_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(found).is_relative_to(installed.parent)
    assert not Path(found).resolve().is_relative_to(ROOT)


def test_installed_serve_answers_the_widget_and_the_chat_page(
    installed: Path, start: Any, emulator: Any, tmp_path: Path
) -> None:
    port = free_port()
    proc, log = start(
        [str(installed / "docschat"), "serve", "--port", str(port)],
        DATABASE_URL=f"sqlite:///{tmp_path / 'serve.db'}",
        OPENAI_API_KEY=API_KEY,
        OPENAI_BASE_URL=emulator.base_url,
        DOCSCHAT_ADMIN_TOKEN="wheel-console-token-0123456789",
    )
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: _up(proc, log, "serving on"), timeout=60, every=0.2)
    # The operator console's files come from the wheel too.
    for asset in CONSOLE.iterdir():
        name = "" if asset.name == "index.html" else asset.name
        served = httpx.get(f"{base}/admin/{name}")
        assert served.status_code == 200 and served.content == asset.read_bytes(), asset.name

    loader = httpx.get(f"{base}/widget.js")
    assert loader.status_code == 200
    assert loader.content == (WIDGET / "embed.js").read_bytes()
    page = httpx.get(f"{base}/widget/")
    assert page.status_code == 200
    assert '<script src="chat.js"' in page.text and "<title>Docs assistant</title>" in page.text
    # The answer allow-list the page carries comes from the installed allowlist.json.
    assert '"tags":' in page.text
    for asset in WIDGET.iterdir():
        if asset.name != "index.html":
            served = httpx.get(f"{base}/widget/{asset.name}")
            assert served.status_code == 200 and served.content == asset.read_bytes(), asset.name


def test_installed_demo_lists_the_bundled_docs(installed: Path, start: Any, tmp_path: Path) -> None:
    port = free_port()
    proc, log = start(
        [str(installed / "docschat"), "demo", "--port", str(port),
         "--database", f"sqlite:///{tmp_path / 'demo.db'}"],
    )  # fmt: skip
    wait_until(lambda: _up(proc, log, "ready on"), timeout=90, every=0.2)

    page = httpx.get(f"http://127.0.0.1:{port}/")
    assert page.status_code == 200 and '<script src="/widget.js"' in page.text
    pages = sorted(DOCS.glob("*.md"))
    assert f"the {len(pages)} pages" in page.text
    for doc in pages:
        assert f'<li><a href="{doc.stem}.html">' in page.text
        assert (
            '<script src="/widget.js"' in httpx.get(f"http://127.0.0.1:{port}/{doc.stem}.html").text
        )
    assert f"crawled {len(pages)} pages" in log.read_text()  # the front page is not indexed
    assert httpx.get(f"http://127.0.0.1:{port}/widget.js").status_code == 200
