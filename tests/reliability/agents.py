"""Agents for the reliability wirings (importable: wiring.yaml names them by module path)."""

from __future__ import annotations

import msgspec

from vibe_actors import Agent, handler

__all__ = ["CrashLoop"]


class _Boom(msgspec.Struct, frozen=True):
    """The self-message that makes every incarnation of CrashLoop crash."""


class CrashLoop(Agent):
    """Crashes as soon as it has started, every incarnation: a crash loop on purpose."""

    def on_start(self) -> None:
        self.start_timer("boom", _Boom(), 0.0)

    @handler
    def _boom(self, msg: _Boom) -> None:
        raise RuntimeError("crash loop: this agent crashes right after every start")
