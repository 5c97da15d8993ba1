"""A durable shopping cart: one entity per cart id, its contents surviving restarts.

``Cart`` is an entity kind (docs/guides/entities.md): the runtime creates the
cart of an id on its first message, in one of the kind's shard threads, and
loads its saved state; it never builds a thread or a mailbox per cart. The
state is a msgspec Struct whose fields all have defaults (a cart never seen
before starts empty). The kind is durable: after every message that changed
the state, the new state is written to SQLite before the reply is sent, so a
reply the caller saw is never lost, not even to ``kill -9``.

* :class:`AddItem` adds a quantity of a product at a unit price;
* :class:`RemoveItem` takes a quantity off (the line goes at zero); a product
  not in the cart is refused with :class:`NotInCart` (a typed error reply);
* :class:`ViewCart` answers the :class:`CartView`;
* :class:`Checkout` answers the :class:`Order`, empties the cart and
  passivates it (its thread-free instance is dropped until its next message);
  an empty cart is refused with :class:`EmptyCart`.

Run it as a script from the repository's root::

    .venv/bin/python examples/shopping_cart.py

It starts a system on a temporary data directory, fills a cart, shuts the
system down, starts a new one on the same directory and shows that the cart
survived, then checks out. In wiring.yaml the same kind is one node::

    - name: carts
      entity:
        agent: shopping_cart:Cart
        shards: 4
        passivate_after: 10m
        state: durable
"""

from __future__ import annotations

import tempfile
from typing import Annotated

import msgspec
import structlog

from vibe_actors import (
    ActorSystem,
    Entity,
    EntitySpec,
    EntityState,
    ErrorReply,
    Message,
    SystemConfig,
    WorkerSpec,
    handler,
)

__all__ = [
    "AddItem",
    "Cart",
    "CartLine",
    "CartState",
    "CartView",
    "Checkout",
    "EmptyCart",
    "NotInCart",
    "Order",
    "RemoveItem",
    "ViewCart",
    "cart_kind",
]

#: A quantity: a whole number of items, at least one.
Quantity = Annotated[int, msgspec.Meta(ge=1)]


# -- messages (the kind's protocol: what HTTP callers send and receive too) -------------------


class AddItem(Message):
    sku: str
    quantity: Quantity = 1
    #: The unit price, in cents (the price of the latest add wins).
    unit_cents: Annotated[int, msgspec.Meta(ge=0)] = 0


class RemoveItem(Message):
    sku: str
    quantity: Quantity = 1


class ViewCart(Message):
    pass


class Checkout(Message):
    pass


class CartLine(msgspec.Struct):
    quantity: int
    unit_cents: int


class CartView(Message):
    cart: str
    lines: dict[str, CartLine]
    total_cents: int


class Order(Message):
    cart: str
    lines: dict[str, CartLine]
    total_cents: int


class NotInCart(ErrorReply):
    """A removal of a product the cart does not hold (HTTP 404)."""

    http_status = 404
    sku: str


class EmptyCart(ErrorReply):
    """A checkout of an empty cart (HTTP 409)."""

    http_status = 409


# -- the entity ---------------------------------------------------------------------------


class CartState(msgspec.Struct):
    """What is saved for each cart id (msgpack, one row per id)."""

    lines: dict[str, CartLine] = {}


class Cart(Entity[CartState]):
    """One shopping cart; ``self.id`` is the cart's id, ``self.state`` its contents."""

    @handler
    def add(self, msg: AddItem) -> CartView:
        line = self.state.lines.get(msg.sku)
        quantity = msg.quantity + (line.quantity if line is not None else 0)
        # Mutating the state in place is fine: the runtime compares its encoding
        # before and after the message and saves it when it changed.
        self.state.lines[msg.sku] = CartLine(quantity=quantity, unit_cents=msg.unit_cents)
        return self._view()

    @handler
    def remove(self, msg: RemoveItem) -> CartView | NotInCart:
        line = self.state.lines.get(msg.sku)
        if line is None:
            return NotInCart(sku=msg.sku, detail=f"{msg.sku!r} is not in cart {self.id!r}")
        if line.quantity <= msg.quantity:
            del self.state.lines[msg.sku]
        else:
            line.quantity -= msg.quantity
        return self._view()

    @handler
    def view(self, msg: ViewCart) -> CartView:
        return self._view()

    @handler
    def checkout(self, msg: Checkout) -> Order | EmptyCart:
        if not self.state.lines:
            return EmptyCart(detail=f"cart {self.id!r} is empty")
        view = self._view()
        order = Order(cart=self.id, lines=view.lines, total_cents=view.total_cents)
        self.state = CartState()  # emptied: saved before the Order reaches the caller
        self.passivate()  # nothing left to keep in memory: drop the instance after this message
        return order

    def _view(self) -> CartView:
        # A copy: the reply must not share the state's mutable lines.
        lines = {
            sku: CartLine(quantity=line.quantity, unit_cents=line.unit_cents)
            for sku, line in self.state.lines.items()
        }
        total = sum(line.quantity * line.unit_cents for line in lines.values())
        return CartView(cart=self.id, lines=lines, total_cents=total)


def cart_kind(shards: int = 4, passivate_after: float = 600.0) -> WorkerSpec:
    """The ``carts`` entity kind, durable."""
    entity = EntitySpec(shards=shards, passivate_after=passivate_after, state=EntityState.DURABLE)
    return WorkerSpec(name="carts", agent=Cart, entity=entity)


# -- the script ---------------------------------------------------------------------------


def _show(label: str, view: CartView | Order) -> None:
    items = ", ".join(f"{line.quantity} x {sku}" for sku, line in view.lines.items()) or "empty"
    print(f"{label:<28} {items} (total {view.total_cents / 100:.2f})")


def main() -> None:
    # A program is the edge: it configures logging once (the library only emits).
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.dev.ConsoleRenderer()]
    )
    with tempfile.TemporaryDirectory(prefix="carts-") as data_dir:
        config = SystemConfig(data_dir=data_dir)
        with ActorSystem([cart_kind()], config) as system:
            alice = system.entity("carts", "alice")  # a ref: nothing is activated yet
            alice.ask(AddItem(sku="apple", quantity=3, unit_cents=50))
            alice.ask(AddItem(sku="pear", quantity=2, unit_cents=80))
            _show("alice, before the restart:", alice.ask(RemoveItem(sku="apple")))
            system.entity("carts", "bob").ask(AddItem(sku="plum", unit_cents=120))
            print(f"carts active: {system.entity_info('carts').active}")
        # The system is gone (its shards passivated every cart on the way out);
        # a new one on the same data directory loads each cart on its first message.
        with ActorSystem([cart_kind()], config) as system:
            alice = system.entity("carts", "alice")
            _show("alice, after the restart:", alice.ask(ViewCart()))
            _show("alice checks out:", alice.ask(Checkout()))
            _show("alice, after checkout:", alice.ask(ViewCart()))
            _show("bob, untouched:", system.entity("carts", "bob").ask(ViewCart()))
            info = system.entity_info("carts")
            print(f"activations: {info.activations}, passivations: {info.passivations}")


if __name__ == "__main__":
    main()
