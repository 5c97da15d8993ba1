"""A protocol state machine with states (``become``) and the stash, as the semantics guide shows.

``Connection`` starts ``offline``: a ``Send`` is stashed (its asker keeps
waiting), a ``Connect`` switches it ``online`` and unstashes, so the sends
queued meanwhile go out first and in order. ``Disconnect`` goes back
offline. ``Status`` is handled in every state. A crash restarts it offline,
with what was stashed still waiting.
"""

from __future__ import annotations

from vibe_actors import Agent, Message, handler

__all__ = ["Connect", "Connection", "Disconnect", "Send", "Sent", "State", "Status"]


class Connect(Message):
    pass


class Disconnect(Message):
    pass


class Send(Message):
    text: str


class Sent(Message):
    text: str


class Status(Message):
    pass


class State(Message):
    state: str | None
    stashed: int


class Connection(Agent[Connect | Disconnect | Send | Status]):
    initial_state = "offline"
    stash_capacity = 100  # one more stashed message crashes it (StashOverflow)

    @handler(when="offline")
    def connect(self, msg: Connect) -> State:
        self.become("online")
        self.unstash_all()  # handled next, before anything newer in the mailbox
        return self._state()

    @handler(when="offline")
    def send_later(self, msg: Send) -> None:
        self.stash()

    @handler(when="online")
    def send(self, msg: Send) -> Sent:
        return Sent(text=msg.text)

    @handler(when="online")
    def disconnect(self, msg: Disconnect) -> State:
        self.become("offline")
        return self._state()

    @handler  # no ``when``: active in every state
    def status(self, msg: Status) -> State:
        return self._state()

    def _state(self) -> State:
        return State(state=self.state_name, stashed=self.stashed)
