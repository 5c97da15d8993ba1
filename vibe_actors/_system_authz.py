"""The authorisation part of the embedding API (:class:`~vibe_actors.ActorSystem`): sends
made on behalf of a caller, checked against the installed :class:`~vibe_actors.Authorizer`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vibe_actors._deadletters import DeadLetterReason
from vibe_actors._messages import Forbidden

if TYPE_CHECKING:
    from vibe_actors._authz import Authorizer, Caller
    from vibe_actors._deadletters import DeadLetters
    from vibe_actors._envelope import Envelope

__all__ = ["Authorization"]


class Authorization:
    """Mixed into :class:`~vibe_actors.ActorSystem`."""

    dead_letters: DeadLetters
    _authorizer: Authorizer | None

    def set_authorizer(self, authorizer: Authorizer | None) -> None:
        """Install what decides the sends made on behalf of a caller (None: allow all).

        The policy agent installs its policy on start and on every reload; the
        last installed stays in force while that agent restarts. See
        :mod:`vibe_actors._authz`.
        """
        self._authorizer = authorizer

    def authorize(
        self, caller: Caller | None, agent: str, message_type: str, sender: str | None = None
    ) -> str | None:
        """None if ``caller`` may send ``message_type`` to ``agent``, else why not.

        Trusted code (``caller`` None) and a system without an authorizer are
        always allowed. For agents that accept work to do later on a caller's
        behalf: refuse it when accepted, rather than fail it when delivered.
        """
        authorizer = self._authorizer
        if caller is None or authorizer is None:
            return None
        if "/" in agent:  # an entity: policy names its kind
            agent = agent.partition("/")[0]
        return authorizer.authorize(caller, agent, message_type, sender)

    def forbids(self, name: str, envelope: Envelope) -> bool:
        """Whether ``envelope`` (which carries a caller) may not go to ``name``.

        A forbidden ask is answered :class:`Forbidden`; a forbidden message
        becomes a dead letter with reason ``forbidden``.
        """
        message_type = type(envelope.message).__name__
        reason = self.authorize(envelope.caller, name, message_type, envelope.sender)
        if reason is None:
            return False
        if envelope.reply is not None:
            envelope.reply.resolve(Forbidden(agent=name, message_type=message_type, detail=reason))
        self.dead_letters.publish(name, envelope, DeadLetterReason.FORBIDDEN)
        return True
