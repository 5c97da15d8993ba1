"""Start order from depends_on on long chains: right, and never an endless loop."""

from __future__ import annotations

import msgspec
import pytest

import phoenix

COUNTER = "tests.phoenix.agents:Counter"
N = 2_000


def chain(names: list[str], depends: dict[str, str], indent: str = "    ") -> str:
    return "".join(
        f"{indent}- name: {name}\n{indent}  agent: {COUNTER}\n"
        + (f"{indent}  depends_on: [{depends[name]}]\n" if name in depends else "")
        for name in names
    )


def wiring(children: str) -> str:
    return f"version: 1\nroot:\n  name: root\n  children:\n{children}"


def test_a_long_chain_written_backwards_starts_from_its_end():
    # w0 depends on w1, ..., w1998 on w1999: every sibling must move after the next one.
    names = [f"w{i}" for i in range(N)]
    depends = {f"w{i}": f"w{i + 1}" for i in range(N - 1)}
    root, _ = phoenix.build(phoenix.load_text(wiring(chain(names, depends))))
    assert [c.name for c in root.children] == names[::-1]


def test_a_long_chain_keeps_the_files_order_where_dependencies_allow():
    # Every even worker depends on the next odd one; the odd ones depend on nothing.
    names = [f"w{i}" for i in range(N)]
    depends = {f"w{i}": f"w{i + 1}" for i in range(0, N, 2)}
    root, _ = phoenix.build(phoenix.load_text(wiring(chain(names, depends))))
    expected = [name for i in range(0, N, 2) for name in (f"w{i + 1}", f"w{i}")]
    assert [c.name for c in root.children] == expected


def test_a_long_chain_across_subtrees_is_checked_against_the_start_order():
    count = 300
    subtrees = "".join(
        f"    - name: s{i}\n      children:\n"
        + chain([f"w{i}"], {f"w{i}": f"w{i - 1}"} if i else {}, indent="        ")
        for i in range(count)
    )
    root, _ = phoenix.build(phoenix.load_text(wiring(subtrees)))
    assert [s.children[0].name for s in root.children] == [f"w{i}" for i in range(count)]
    backwards = "".join(  # x_i depends on x_{i+1}, which starts later in another subtree
        f"    - name: s{i}\n      children:\n"
        + chain([f"x{i}"], {f"x{i}": f"x{i + 1}"} if i < count - 1 else {}, indent="        ")
        for i in range(count)
    )
    with pytest.raises(phoenix.WiringError) as info:
        phoenix.build(phoenix.load_text(wiring(backwards)))
    assert len(info.value.problems) == count - 1
    assert "'x0' depends on 'x1', which starts later" in str(info.value)


@pytest.mark.timeout(10)
def test_siblings_in_a_cycle_in_a_wiring_not_from_load_are_a_problem_not_a_hang():
    # load() refuses cycles; a Wiring made in code is build()'s only way to meet one.
    loaded = phoenix.load_text(wiring(chain(["a", "b", "c"], {})))
    a, b, c = loaded.root.children
    cyclic = msgspec.structs.replace(
        loaded.root,
        children=[
            msgspec.structs.replace(a, depends_on=["b"]),
            msgspec.structs.replace(b, depends_on=["a"]),
            c,
        ],
    )
    with pytest.raises(phoenix.WiringError) as info:
        phoenix.build(msgspec.structs.replace(loaded, root=cyclic))
    assert [str(p) for p in info.value.problems] == [
        "wiring.yaml:1:1: $..root.children: dependency cycle among the children of 'root': a, b"
    ]
