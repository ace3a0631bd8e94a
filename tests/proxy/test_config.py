"""Settings come from the environment, with types and defaults, and README documents every one."""

from pathlib import Path

import pytest

from proxy.config import Settings, documented

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_documented_in_readme_with_its_default():
    for env, default, _help in documented():
        row = f"| `{env}` | `{default or '(empty)'}` |"
        assert row in README, f"README lacks {env} with default {default!r}"


def test_settings_read_types_from_the_environment():
    s = Settings.from_env(
        {
            "DOCSCHAT_STREAMING": "off",
            "DOCSCHAT_WORKER_THREADS": "7",
            "DOCSCHAT_ALLOWED_ORIGINS": "https://a.example/, https://b.example",
        }
    )
    assert s.streaming is False and s.worker_threads == 7
    assert s.origins == ["https://a.example", "https://b.example"]


def test_unreadable_setting_is_a_clear_error():
    with pytest.raises(SystemExit, match="DOCSCHAT_WORKER_THREADS"):
        Settings.from_env({"DOCSCHAT_WORKER_THREADS": "many"})
