"""Policy: who may send which message type to which agent.

Rules come from the agent's :class:`PolicyConfig` and may be replaced at run
time with :class:`Reload`. The decision itself is a pure function
(:func:`decide`) and an immutable, thread-safe :class:`PolicySnapshot`, so a
gateway can hold a snapshot and decide without an actor hop per request; it
refreshes the snapshot (``Snapshot{}``) when a :class:`PolicyChanged` event
appears on ``system.events``.

Semantics (``enabled``):

* disabled (the default): everything is allowed, no rule is consulted;
* enabled: a message is allowed only if some rule allows it and no rule denies
  it. An explicit deny wins over any allow, wherever it sits in the list;
  nothing matching means deny (default deny).

A rule matches when each of its fields matches: ``agent`` and ``message`` are
names or ``"*"`` (any); ``principal`` is a name, ``"*"`` (any named principal,
not the anonymous one) or ``None`` (anyone, anonymous included); ``role`` is
a role the principal holds (``roles`` maps principal -> roles), or ``None``.

Across its own restart the agent keeps the policy: with ``persist`` (the
default) every :class:`Reload` is written atomically to
``<data_dir>/policy/<name>.json`` *before* it takes effect, and a restarted
incarnation loads it, version included. The file remembers which
configuration it overrides: if the configured rules changed since (a live
reload of the tree), the configuration wins and the version moves on. A file
that cannot be read or decoded makes ``on_start`` raise (the supervisor sees
the failure) rather than silently fall back to other rules. With
``persist=False`` a restart rebuilds the policy from the configuration alone
(version 1). Each start publishes :class:`PolicyChanged`.

Deliveries on a caller's behalf: on start and on every reload the agent
installs its policy as the system's authorizer (:class:`PolicyAuthorizer`),
so a message an agent sends *for* a caller (a reminder firing, a job's ask, a
pubsub event) is decided like the caller's own request; a denial publishes
:class:`PolicyDenied` naming the caller's principal and the agent that sent
it (``sender``). The last installed policy stays in force while this agent
restarts. One policy agent governs a system: with several, the last to
start or reload wins. :class:`PolicyChanged` names the caller behind a
reload (None: trusted code, not a request) and the agent that delivered it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Literal

import msgspec

from vibe_actors import ActorSystem, Agent, Caller, handler
from vibe_actors._files import tighten, write_private_atomically
from vibe_actors.agents.policy.protocol import (
    WILDCARD,
    Check,
    Decision,
    PolicyChanged,
    PolicyConfig,
    PolicyDenied,
    PolicyNotSaved,
    PolicyReloaded,
    PolicySnapshotReply,
    Reload,
    Rule,
    Snapshot,
)

__all__ = [
    "WILDCARD",
    "Check",
    "Decision",
    "Policy",
    "PolicyAuthorizer",
    "PolicyChanged",
    "PolicyConfig",
    "PolicyDenied",
    "PolicyNotSaved",
    "PolicyReloaded",
    "PolicySnapshot",
    "PolicySnapshotReply",
    "Reload",
    "Rule",
    "Snapshot",
    "decide",
]

# -- the decision ---------------------------------------------------------------


def decide(
    rules: Sequence[Rule],
    roles: Mapping[str, Sequence[str]],
    principal: str | None,
    agent: str,
    message: str,
) -> Decision:
    """The decision of an *enabled* policy: deny wins, then allow, else default deny."""
    held = frozenset(roles.get(principal, ())) if principal is not None else frozenset()
    return _decide(rules, held, principal, agent, message)


def _decide(
    rules: Sequence[Rule], held: frozenset[str], principal: str | None, agent: str, message: str
) -> Decision:
    allow_at: int | None = None
    for index, rule in enumerate(rules):
        if not rule.matches(principal, held, agent, message):
            continue
        if rule.effect == "deny":
            return Decision(
                allowed=False, rule=index, reason=_why(principal, agent, message, index)
            )
        if allow_at is None:
            allow_at = index
    if allow_at is None:
        return Decision(allowed=False, rule=None, reason=_why(principal, agent, message, None))
    return Decision(allowed=True, rule=allow_at, reason=f"allowed by rule {allow_at}")


def _why(principal: str | None, agent: str, message: str, rule: int | None) -> str:
    who = "anonymous" if principal is None else repr(principal)
    cause = "no rule allows it" if rule is None else f"denied by rule {rule}"
    return f"{who} may not send {message} to {agent}: {cause}"


class PolicySnapshot:
    """An immutable policy with its version; :meth:`decide` is safe from any thread.

    Replace the whole object to change the policy (a reference swap is atomic).
    """

    __slots__ = ("_held", "enabled", "roles", "rules", "version")

    version: int
    enabled: bool
    rules: tuple[Rule, ...]
    roles: Mapping[str, tuple[str, ...]]
    _held: dict[str, frozenset[str]]

    def __init__(
        self,
        rules: Sequence[Rule] = (),
        roles: Mapping[str, Sequence[str]] | None = None,
        *,
        enabled: bool = False,
        version: int = 1,
    ) -> None:
        frozen_roles = {p: tuple(r) for p, r in (roles or {}).items()}
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "enabled", enabled)
        object.__setattr__(self, "rules", tuple(rules))
        object.__setattr__(self, "roles", MappingProxyType(frozen_roles))
        object.__setattr__(self, "_held", {p: frozenset(r) for p, r in frozen_roles.items()})

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("PolicySnapshot is immutable")

    def __repr__(self) -> str:
        return f"<PolicySnapshot v{self.version} enabled={self.enabled} rules={len(self.rules)}>"

    @classmethod
    def from_reply(cls, reply: PolicySnapshotReply) -> PolicySnapshot:
        """The snapshot a :class:`PolicySnapshotReply` describes."""
        return cls(reply.rules, reply.roles, enabled=reply.enabled, version=reply.version)

    def to_reply(self) -> PolicySnapshotReply:
        return PolicySnapshotReply(
            version=self.version,
            enabled=self.enabled,
            rules=list(self.rules),
            roles={p: list(r) for p, r in self.roles.items()},
        )

    def decide(self, principal: str | None, agent: str, message: str) -> Decision:
        """Allowed when disabled; otherwise :func:`decide` over this snapshot's rules."""
        if not self.enabled:
            return Decision(allowed=True, rule=None, reason="policy disabled")
        held = self._held.get(principal, frozenset()) if principal is not None else frozenset()
        return _decide(self.rules, held, principal, agent, message)


class PolicyAuthorizer:
    """The system's :class:`~vibe_actors.Authorizer` over one policy agent's policy.

    Thread-safe: the policy is an immutable snapshot replaced by reference.
    A denial publishes :class:`PolicyDenied` (for the audit trail).
    """

    __slots__ = ("_events", "policy", "snapshot")

    def __init__(self, system: ActorSystem, policy: str, snapshot: PolicySnapshot) -> None:
        self._events = system.events
        self.policy = policy
        self.snapshot = snapshot

    def authorize(
        self, caller: Caller, agent: str, message_type: str, sender: str | None
    ) -> str | None:
        decision = self.snapshot.decide(caller.principal, agent, message_type)
        if decision.allowed:
            return None
        self._events.publish(
            PolicyDenied(policy=self.policy, principal=caller.principal, agent=agent,
                         message=message_type, rule=decision.rule, reason=decision.reason,
                         sender=sender)
        )  # fmt: skip
        return decision.reason


# -- persistence ----------------------------------------------------------------


class _Saved(msgspec.Struct, frozen=True, kw_only=True):
    """The policy file: a reload, and the fingerprint of the config it overrides."""

    version: int
    fingerprint: str
    enabled: bool
    rules: list[Rule]
    roles: dict[str, list[str]]


def _fingerprint(config: PolicyConfig) -> str:
    data = msgspec.json.encode(
        {"rules": config.rules, "roles": config.roles, "enabled": config.enabled},
        order="sorted",
    )
    return hashlib.sha256(data).hexdigest()


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one.

    The file is 0600 in a 0700 directory (see :func:`write_private_atomically`);
    raises ``OSError`` if it cannot be written (``path`` is then unchanged).
    """
    write_private_atomically(path, data)


def _initial(config: PolicyConfig, path: Path | None) -> PolicySnapshot:
    """The policy a new incarnation starts with (see the module docstring)."""
    from_config = PolicySnapshot(config.rules, config.roles, enabled=config.enabled)
    # A file (and directory) an older version left readable by others is made private.
    if path is None or not tighten(path):
        return from_config
    tighten(path.parent)
    saved = msgspec.json.decode(path.read_bytes(), type=_Saved)
    if saved.fingerprint != _fingerprint(config):
        return PolicySnapshot(
            config.rules, config.roles, enabled=config.enabled, version=saved.version + 1
        )
    return PolicySnapshot(saved.rules, saved.roles, enabled=saved.enabled, version=saved.version)


# -- the agent --------------------------------------------------------------------


class Policy(Agent[Check | Snapshot | Reload]):
    """Authorization decisions and the policy's source of truth.

    Protocol: ``Check`` -> ``Decision`` (a denial also publishes
    :class:`PolicyDenied`); ``Snapshot`` -> ``PolicySnapshotReply``; ``Reload``
    -> ``PolicyReloaded`` or ``PolicyNotSaved`` (nothing changed).
    """

    Config: ClassVar = PolicyConfig

    def on_start(self) -> None:
        self._settings = self.config
        self._path = (
            Path(self.system.config.data_dir) / "policy" / f"{self.name}.json"
            if self._settings.persist
            else None
        )
        self._policy = _initial(self._settings, self._path)
        self.log = self.log.bind(policy_version=self._policy.version)
        self._authorizer = PolicyAuthorizer(self.system, self.name, self._policy)
        self.system.set_authorizer(self._authorizer)
        self._announce("start")

    @handler
    def check(self, msg: Check) -> Decision:
        decision = self._policy.decide(msg.principal, msg.agent, msg.message)
        if not decision.allowed:
            self.system.events.publish(
                PolicyDenied(policy=self.name, principal=msg.principal, agent=msg.agent,
                             message=msg.message, rule=decision.rule, reason=decision.reason)
            )  # fmt: skip
        return decision

    @handler
    def snapshot(self, msg: Snapshot) -> PolicySnapshotReply:
        return self._policy.to_reply()

    @handler
    def reload(self, msg: Reload) -> PolicyReloaded | PolicyNotSaved:
        enabled = self._policy.enabled if msg.enabled is None else msg.enabled
        new = PolicySnapshot(
            msg.rules, msg.roles, enabled=enabled, version=self._policy.version + 1
        )
        if self._path is not None:
            try:
                self._save(new)
            except OSError as exc:
                self.log.error("policy_not_saved", path=str(self._path), error=str(exc))
                return PolicyNotSaved(detail=f"cannot write the policy file: {exc.strerror}")
        self._policy = new
        self._authorizer.snapshot = new
        self.system.set_authorizer(self._authorizer)
        self.log = self.log.bind(policy_version=new.version)
        self._announce("reload", self.caller, self.envelope.sender if self.envelope else None)
        return PolicyReloaded(version=new.version)

    def _save(self, policy: PolicySnapshot) -> None:
        assert self._path is not None
        reply = policy.to_reply()
        saved = _Saved(
            version=reply.version,
            fingerprint=_fingerprint(self._settings),
            enabled=reply.enabled,
            rules=reply.rules,
            roles=reply.roles,
        )
        _write_atomically(self._path, msgspec.json.encode(saved))

    def _announce(
        self,
        cause: Literal["start", "reload"],
        caller: Caller | None = None,
        sender: str | None = None,
    ) -> None:
        policy = self._policy
        principal = caller.principal if caller is not None else None
        self.log.info(
            "policy_changed", cause=cause, enabled=policy.enabled, rules=len(policy.rules),
            on_behalf=caller is not None, principal=principal, sender=sender,
        )  # fmt: skip
        self.system.events.publish(
            PolicyChanged(policy=self.name, version=policy.version, enabled=policy.enabled,
                          rules=len(policy.rules), cause=cause, caller=caller, sender=sender)
        )  # fmt: skip
