"""Supervision directives per exception type: which one applies to a handler's failure.

An agent class declares ``directives`` (exception class -> :class:`Directive`)
and its WorkerSpec may add or override some; the most specific class in the
exception's MRO decides, and an exception none names restarts (OTP's and
Akka's default). See :class:`vibe_actors.Directive`.
"""

from __future__ import annotations

from vibe_actors._errors import VibeError
from vibe_actors._spec import Directive, SupervisorSpec, WorkerSpec

__all__ = ["EscalationRequested", "directive_for", "directives_of"]


class EscalationRequested(VibeError):
    """Reported by an incarnation whose crash its directives escalate; its supervisor
    turns it into :class:`~vibe_actors.ChildEscalated` and fails with it."""

    def __init__(self, child: str, error: BaseException) -> None:
        super().__init__(f"{child}: {type(error).__name__}: {error}")
        self.child = child
        self.error = error


def directives_of(agent_class: type, spec: WorkerSpec | SupervisorSpec) -> dict[type, Directive]:
    """The agent class's directives, with the spec's over them (exception class -> Directive)."""
    merged = dict(getattr(agent_class, "directives", {}))
    if isinstance(spec, WorkerSpec) and spec.directives:
        merged.update(spec.directives)
    return merged


def directive_for(directives: dict[type, Directive], error: BaseException) -> Directive:
    """The directive of ``error``: its most specific class that has one, else RESTART."""
    for klass in type(error).__mro__:
        found = directives.get(klass)
        if found is not None:
            return found
    return Directive.RESTART
