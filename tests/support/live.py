"""docschat inside the test process: the parts one process holds (`proxy.services.build`),
talking to an emulator and a real database, without a `docschat serve` subprocess."""

from __future__ import annotations

import queue
from typing import Any

from emulator.server import RunningEmulator
from proxy.answers.events import Subscription
from proxy.config import Settings
from proxy.services import Services, build
from tests.support.emulator import add_faults, emulator_stats
from tests.support.stack import API_KEY, STACK_ENV
from tests.support.waits import wait_until

FINAL = ("done", "error")


def live_env(db_url: str, emulator: RunningEmulator, **env: str) -> dict[str, str]:
    """The settings of an in-process docschat on `db_url` answering through `emulator`."""
    return {
        **STACK_ENV,
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_BASE_URL": emulator.base_url,
        "DATABASE_URL": db_url,
        **env,
    }


class Live:
    """One process's docschat parts and the emulator they talk to."""

    def __init__(
        self,
        env: dict[str, str],
        emulator: RunningEmulator,
        *,
        with_worker: bool = True,
        readers: bool = True,
    ) -> None:
        self.env = env
        self.emulator = emulator
        self.settings = Settings.from_env(env)
        self.services: Services = build(self.settings, with_worker=with_worker, readers=readers)
        self.chat = self.services.chat

    def answers(self, sid: str, count: int = 1, timeout: float = 20) -> list[dict[str, Any]]:
        """The session's answers once `count` of them have ended (done or error)."""

        def ended() -> list[dict[str, Any]] | None:
            answers = [m for m in self.chat.messages(sid) if m["role"] == "assistant"]
            return answers if len([a for a in answers if a["status"] in FINAL]) >= count else None

        return wait_until(ended, timeout=timeout)

    def stats(self) -> dict[str, int]:
        """Upstream requests the emulator counted, by method and path template."""
        return emulator_stats(self.emulator.url)

    def faults(self, *faults: dict[str, Any]) -> None:
        """Queue emulator faults for the next matching requests."""
        add_faults(self.emulator.url, *faults)

    def close(self) -> None:
        """Stop the worker and the listener, release connections."""
        self.services.close()


class Inbox:
    """What a Hub subscription (one WebSocket's queue) has been handed, kept in order."""

    def __init__(self, subscription: Subscription) -> None:
        self.subscription = subscription
        self.events: list[dict[str, Any]] = []

    def received(self) -> list[dict[str, Any]]:
        """Every event so far."""
        while True:
            try:
                self.events.append(self.subscription.queue.get_nowait())
            except queue.Empty:
                return list(self.events)

    def messages(self) -> list[dict[str, Any]]:
        """The messages of the message events so far, in order."""
        return [e["message"] for e in self.received() if e.get("type") == "message"]
