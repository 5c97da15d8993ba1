"""The shopping-cart example: carts by id, durable across restarts, checkout passivates.

Every system is built from the same wiring (the one the example's docstring
shows) on the test's own data directory. No test sleeps: replies are waited on
with deadlines.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from shopping_cart import (
    AddItem,
    CartLine,
    CartView,
    Checkout,
    EmptyCart,
    NotInCart,
    Order,
    RemoveItem,
    ViewCart,
)

from vibe_actors import AskError

HERE = Path(__file__).parent

WIRING = """
root:
  name: root
  children:
    - name: carts
      entity:
        agent: shopping_cart:Cart
        shards: 4
        passivate_after: 10m
        state: durable
"""


@pytest.fixture
def data_dir(tmp_path: Path) -> str:
    return str(tmp_path / "data")


@pytest.fixture
def carts(actor_system_factory, data_dir):
    return actor_system_factory(WIRING, data_dir=data_dir)


def test_add_remove_and_view(carts):
    cart = carts.entity("carts", "alice")
    cart.ask(AddItem(sku="apple", quantity=3, unit_cents=50))
    cart.ask(AddItem(sku="pear", quantity=1, unit_cents=80))
    view = cart.ask(RemoveItem(sku="apple", quantity=2))
    assert view == CartView(
        cart="alice",
        lines={"apple": CartLine(1, 50), "pear": CartLine(1, 80)},
        total_cents=130,
    )
    assert cart.ask(RemoveItem(sku="pear", quantity=5)).lines == {"apple": CartLine(1, 50)}
    assert cart.ask(ViewCart()).total_cents == 50


def test_carts_are_independent_and_a_new_cart_starts_empty(carts):
    carts.entity("carts", "alice").ask(AddItem(sku="apple", unit_cents=50))
    assert carts.entity("carts", "bob").ask(ViewCart()) == CartView(
        cart="bob", lines={}, total_cents=0
    )


def test_refusals_are_typed_error_replies(carts):
    cart = carts.entity("carts", "alice")
    with pytest.raises(AskError) as missing:
        cart.ask(RemoveItem(sku="kiwi"))
    assert isinstance(missing.value.reply, NotInCart) and missing.value.reply.sku == "kiwi"
    with pytest.raises(AskError) as empty:
        cart.ask(Checkout())
    assert isinstance(empty.value.reply, EmptyCart)
    assert carts.entity_info("carts").crashes == 0  # a refusal is an answer, not a crash


def test_checkout_answers_the_order_empties_the_cart_and_passivates_it(carts):
    cart = carts.entity("carts", "alice")
    cart.ask(AddItem(sku="apple", quantity=2, unit_cents=50))
    order = cart.ask(Checkout())
    assert order == Order(cart="alice", lines={"apple": CartLine(2, 50)}, total_cents=100)
    info = carts.entity_info("carts")
    assert info.active == 0 and info.passivations["requested"] == 1
    assert cart.ask(ViewCart()).lines == {}  # activated again, from the emptied saved state


def test_a_cart_survives_a_restart_of_the_system(actor_system_factory, data_dir):
    first = actor_system_factory(WIRING, data_dir=data_dir)
    first.entity("carts", "alice").ask(AddItem(sku="apple", quantity=3, unit_cents=50))
    first.entity("carts", "bob").ask(AddItem(sku="plum", unit_cents=120))
    first.shutdown()
    again = actor_system_factory(WIRING, data_dir=data_dir)
    assert again.entity("carts", "alice").ask(ViewCart()).lines == {"apple": CartLine(3, 50)}
    assert again.entity("carts", "bob").ask(ViewCart()).total_cents == 120
    assert again.entity_info("carts").activations == 2


def test_concurrent_adds_to_one_cart_are_all_kept(carts):
    cart = carts.entity("carts", "alice")
    futures = [cart.ask_future(AddItem(sku="apple", unit_cents=50)) for _ in range(50)]
    totals = sorted(f.result(timeout=10).lines["apple"].quantity for f in futures)
    assert totals == list(range(1, 51))  # one message at a time per cart, none lost


def test_the_script_runs_and_shows_the_cart_survived():
    script = subprocess.run(
        [sys.executable, str(HERE / "shopping_cart.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = script.stdout.splitlines()
    before = next(line for line in lines if line.startswith("alice, before the restart:"))
    after = next(line for line in lines if line.startswith("alice, after the restart:"))
    assert before.split(":", 1)[1].strip() == after.split(":", 1)[1].strip()
    assert "2 x apple, 2 x pear (total 2.60)" in after
    assert any(line.startswith("alice, after checkout:") and "empty" in line for line in lines)
