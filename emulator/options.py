"""Settings of one emulator instance."""

from __future__ import annotations

from dataclasses import dataclass

APIS = ("both", "assistants", "responses")


@dataclass
class EmulatorOptions:
    """How the emulator behaves: answer timing, failure share and which API generation it serves."""

    latency_ms: int = 1500
    tokens_per_second: float = 40.0  # 0 means the whole text arrives at once
    fail_rate: float = 0.0
    seed: int | None = None
    api: str = "both"  # "both", "assistants" or "responses"

    def __post_init__(self) -> None:
        if self.api not in APIS:
            raise ValueError(f"api must be one of {', '.join(APIS)}, not {self.api!r}")
        if self.latency_ms < 0 or self.tokens_per_second < 0:
            raise ValueError("latency_ms and tokens_per_second must not be negative")
        if not 0.0 <= self.fail_rate <= 1.0:
            raise ValueError("fail_rate must be between 0 and 1")
