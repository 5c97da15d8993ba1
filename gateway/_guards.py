"""Authorization and rate limits on the request path, without an actor hop.

The gateway holds a :class:`PolicySnapshot` (refreshed when the policy agent
publishes ``PolicyChanged``) and its own :class:`QuotaBuckets` built from the
quota agent's limits, so a request costs a dict lookup or two, not an ask.
Either guard is off when its agent is not in the wiring.

On a shared store (PostgreSQL, several replicas) the buckets must be every
replica's, so the quota guard asks the quota agent instead (an ask and one
database round trip per request; see :mod:`vibe_actors.agents.quota`): a
``Denied`` is 429 as before, and an agent that cannot decide (its database
out of reach, or restarting) is 503 ``quota-unavailable`` with
``Retry-After``: fails closed.

Fails closed: with authentication on and a policy agent present, a request
that arrives before the first snapshot could be fetched is answered 503.
"""

from __future__ import annotations

import math
import threading

import structlog

from vibe_actors import ActorSystem, AgentStatus, ErrorReply, RuntimeEvent, UnknownAgent
from vibe_actors.agents.policy import PolicyChanged, PolicyDenied, PolicySnapshot, Snapshot
from vibe_actors.agents.quota import Acquire, CostExceedsBurst, Denied, QuotaBuckets, QuotaConfig
from vibe_actors.store import StoreUrlError, parse_store_url

__all__ = ["Guards", "Verdict"]

_log = structlog.get_logger("gateway.guards")


class Verdict:
    """Why a request may not go on: an HTTP status, a problem slug and detail, Retry-After."""

    __slots__ = ("detail", "retry_after", "slug", "status")

    def __init__(self, status: int, slug: str, detail: str, retry_after: int | None = None) -> None:
        self.status = status
        self.slug = slug
        self.detail = detail
        self.retry_after = retry_after


class Guards:
    """Policy and quota checks for one gateway app."""

    def __init__(
        self, system: ActorSystem, policy_agent: str = "policy", quota_agent: str = "quota"
    ) -> None:
        self._system = system
        self.policy_agent = policy_agent if _exists(system, policy_agent) else None
        self.policy: PolicySnapshot | None = None
        self._refreshing = threading.Lock()
        self.quota: QuotaBuckets | None = None
        #: The quota agent to ask, on a shared store (then ``quota`` is None).
        self.quota_agent: str | None = None
        limits = _limits(system, quota_agent)
        if limits and _shared(system):
            self.quota_agent = quota_agent
        elif limits:
            self.quota = QuotaBuckets(limits.limits)
        if self.policy_agent is not None:
            system.events.subscribe(self._on_event)
            self.refresh()

    def refresh(self) -> None:
        """Fetch the policy snapshot again (asynchronously; the old one serves meanwhile)."""
        if self.policy_agent is None or not self._refreshing.acquire(blocking=False):
            return
        self._system.ref(self.policy_agent).ask_future(Snapshot(), callback=self._refreshed)

    def _refreshed(self, reply: object) -> None:
        try:
            if hasattr(reply, "rules"):
                self.policy = PolicySnapshot.from_reply(reply)  # type: ignore[arg-type]
                _log.info(
                    "policy_snapshot", version=self.policy.version, enabled=self.policy.enabled
                )
            else:
                _log.error("policy_snapshot_failed", reply=type(reply).__name__)
        finally:
            self._refreshing.release()

    def _on_event(self, event: RuntimeEvent) -> None:
        if isinstance(event, PolicyChanged):
            self.refresh()

    @property
    def limits(self) -> bool:
        """Whether the quota guard is on."""
        return self.quota is not None or self.quota_agent is not None

    def check(
        self, principal: str | None, agent: str, message: str, authenticated: bool
    ) -> Verdict | None:
        """The policy and the in-memory quota, in the caller's thread: None when the request
        may go on; else the reason to refuse it. A shared quota is :meth:`check_shared`'s."""
        if authenticated and self.policy_agent is not None:
            snapshot = self.policy
            if snapshot is None:
                self.refresh()
                return Verdict(503, "policy-unavailable", "the policy is not loaded yet", 1)
            decision = snapshot.decide(principal, agent, message)
            if not decision.allowed:
                self._system.events.publish(
                    PolicyDenied(
                        policy=self.policy_agent,
                        principal=principal,
                        agent=agent,
                        message=message,
                        rule=decision.rule,
                        reason=decision.reason,
                    )
                )
                return Verdict(403, "forbidden", decision.reason)
        if self.quota is not None:
            granted = self.quota.acquire(principal, agent)
            if isinstance(granted, Denied):
                return Verdict(
                    429, "quota-exceeded", granted.detail, math.ceil(granted.retry_after)
                )
            if isinstance(granted, CostExceedsBurst):
                return _never(granted)
        return None

    async def check_shared(
        self, principal: str | None, agent: str, request_id: str | None
    ) -> Verdict | None:
        """The quota of a shared store (``quota_agent`` set): an ask of the quota agent;
        None when the request may go on, else the reason to refuse it."""
        quota = self.quota_agent
        if quota is None:
            return None
        reply = await self._system.ref(quota).ask_async(
            Acquire(principal=principal, agent=agent), request_id=request_id, raise_errors=False
        )
        if isinstance(reply, Denied):
            return Verdict(429, "quota-exceeded", reply.detail, math.ceil(reply.retry_after))
        if isinstance(reply, CostExceedsBurst):
            return _never(reply)
        if isinstance(reply, ErrorReply):  # unavailable, crashed, timed out: fail closed
            detail = getattr(reply, "detail", "") or type(reply).__name__
            return Verdict(503, "quota-unavailable", f"{quota}: {detail}", 1)
        return None


def _never(refused: CostExceedsBurst) -> Verdict:
    """A limit whose burst is below a request's cost (1) admits no request: refused, with no
    Retry-After (waiting changes nothing), rather than let through unlimited."""
    detail = f"limit {refused.limit} admits no request: its burst is below a request's cost of 1"
    return Verdict(429, "quota-exceeded", detail)


def _exists(system: ActorSystem, name: str) -> bool:
    try:
        return system.status(name) is not AgentStatus.STOPPED
    except UnknownAgent:
        return False


def _limits(system: ActorSystem, name: str) -> QuotaConfig | None:
    """The quota agent's configuration, if it is wired and has limits."""
    if not _exists(system, name):
        return None
    config = system.cell(name).config
    if not isinstance(config, QuotaConfig) or not config.limits:
        return None
    return config


def _shared(system: ActorSystem) -> bool:
    """Whether the system's store is shared by replicas (as the quota agent decides it)."""
    try:
        return parse_store_url(system.config.store).shared
    except StoreUrlError:
        return True
