"""The tutorial's agent: a poll that counts votes (docs/tutorial.md walks through it).

``Poll`` accepts :class:`Vote` for one of the options named in its config and
answers :class:`Tallied`; a vote for anything else gets the typed error
:class:`NoSuchOption` (HTTP 422), and the agent keeps running. The counts are
in memory: a crash or restart starts a new incarnation with empty counts (the
system agent ``state`` is where data that must survive a restart goes).
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

import vibe_actors as va

__all__ = ["NoSuchOption", "Poll", "PollConfig", "Results", "Standings", "Tallied", "Vote"]


# --8<-- [start:messages]
class PollConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The agent's ``config:`` block in wiring.yaml."""

    options: list[str] = msgspec.field(default_factory=lambda: ["yes", "no"])


class Vote(va.Message):
    """Vote for one of the poll's options."""

    option: str


class Tallied(va.Message):
    """The option's count, this vote included."""

    option: str
    votes: int


class Results(va.Message):
    """Ask for every option's count."""


class Standings(va.Message):
    """Every option's count, and the incarnation that counted them."""

    votes: dict[str, int]
    incarnation: int


class NoSuchOption(va.ErrorReply):
    """The vote named an option the poll does not have."""

    http_status: ClassVar[int] = 422
    option: str


# --8<-- [end:messages]


# --8<-- [start:agent]
class Poll(va.Agent):
    """Counts votes per option, in memory."""

    Config = PollConfig

    def on_start(self) -> None:
        # Runs in the agent's own thread, once per incarnation.
        self.votes = dict.fromkeys(self.config.options, 0)
        self.log.info("poll_opened", options=self.config.options)

    @va.handler
    def vote(self, msg: Vote) -> Tallied | NoSuchOption:
        if msg.option not in self.votes:
            # A typed error is a reply: return it (raising would crash the agent).
            return NoSuchOption(option=msg.option, detail=f"no option {msg.option!r}")
        self.votes[msg.option] += 1
        return Tallied(option=msg.option, votes=self.votes[msg.option])

    @va.handler
    def results(self, msg: Results) -> Standings:
        return Standings(votes=dict(self.votes), incarnation=self.incarnation)


# --8<-- [end:agent]
