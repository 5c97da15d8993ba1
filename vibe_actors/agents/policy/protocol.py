"""The policy agent's settings, rules, messages and events (re-exported by
:mod:`vibe_actors.agents.policy`, which is where to import them from).

See that module's docstring for how rules match and decide.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import msgspec

from vibe_actors import Caller, ErrorReply, Message, RuntimeEvent
from vibe_actors._messages import namespaced

__all__ = [
    "WILDCARD",
    "Check",
    "Decision",
    "PolicyChanged",
    "PolicyConfig",
    "PolicyDenied",
    "PolicyNotSaved",
    "PolicyReloaded",
    "PolicySnapshotReply",
    "Reload",
    "Rule",
    "Snapshot",
]


_tag = namespaced("policy")


class _Message(Message, tag=_tag):
    """Base of the policy agent's messages: tagged ``policy.<ClassName>`` on the wire,
    named by the class name over HTTP."""


class _ErrorReply(ErrorReply, tag=_tag):
    """Base of the policy agent's error replies, tagged like its messages."""


#: Matches any agent or message type (and, as ``principal``, any named principal).
WILDCARD = "*"


class Rule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One allow or deny rule; see the module docstring for matching."""

    agent: str = WILDCARD
    message: str = WILDCARD
    effect: Literal["allow", "deny"] = "allow"
    principal: str | None = None
    role: str | None = None

    def __post_init__(self) -> None:
        if not self.agent or not self.message:
            raise ValueError("a rule's agent and message must be non-empty (use '*' for any)")

    def matches(
        self, principal: str | None, held: frozenset[str], agent: str, message: str
    ) -> bool:
        """Whether this rule applies to ``principal`` (holding ``held``) sending ``message``."""
        return (
            (self.agent == WILDCARD or self.agent == agent)
            and (self.message == WILDCARD or self.message == message)
            and _principal_matches(self.principal, principal)
            and (self.role is None or self.role in held)
        )


def _principal_matches(pattern: str | None, principal: str | None) -> bool:
    if pattern is None:
        return True
    if pattern == WILDCARD:
        return principal is not None
    return pattern == principal


class PolicyConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Settings of :class:`Policy`."""

    rules: list[Rule] = []
    #: principal -> the roles it holds.
    roles: dict[str, list[str]] = {}
    enabled: bool = False
    #: Keep runtime reloads across restarts (``<data_dir>/policy/<name>.json``).
    persist: bool = True


# -- messages -----------------------------------------------------------------


class Check(_Message):
    """May ``principal`` (None: anonymous) send a ``message`` (type name) to ``agent``?"""

    agent: str
    message: str
    principal: str | None = None


class Decision(_Message):
    """The answer: ``rule`` is the deciding rule's index (None: default or disabled)."""

    allowed: bool
    rule: int | None = None
    reason: str = ""


class Snapshot(_Message):
    """Ask for the current policy (to build a :class:`PolicySnapshot`)."""


class PolicySnapshotReply(_Message):
    """The current policy; ``version`` grows with every change."""

    version: int
    enabled: bool
    rules: list[Rule]
    roles: dict[str, list[str]]


class Reload(_Message):
    """Replace the rules and roles; ``enabled`` None keeps the current setting."""

    rules: list[Rule]
    roles: dict[str, list[str]] = {}
    enabled: bool | None = None


class PolicyReloaded(_Message):
    """The reload took effect (and was persisted, if the agent persists)."""

    version: int


class PolicyNotSaved(_ErrorReply):
    """The reload could not be persisted; the previous policy is still in force."""

    http_status: ClassVar[int] = 503


class PolicyChanged(RuntimeEvent):
    """The policy of agent ``policy`` is now ``version`` (published on start and reload)."""

    policy: str
    version: int
    enabled: bool
    rules: int
    cause: Literal["start", "reload"]
    #: Who the reload was sent for (None: trusted code, or a start).
    caller: Caller | None = None
    #: The agent that delivered the reload (None: sent directly, or a start).
    sender: str | None = None


class PolicyDenied(RuntimeEvent):
    """A :class:`Check` was denied (for the audit trail)."""

    policy: str
    principal: str | None
    agent: str
    message: str
    rule: int | None
    reason: str
    #: The agent that sent the message on the principal's behalf (None: a direct request).
    sender: str | None = None
