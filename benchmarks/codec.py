"""Codec: msgspec msgpack and JSON per message, against pickle and the standard json module.

Run pinned to one core, like every single-process comparison::

    taskset -c 0 .venv/bin/python -m benchmarks.codec [--quick] [--json PATH]

Two messages: a small one (a few scalar fields, like most commands) and a
medium one (a nested JSON-like payload of about 1 KiB). vibe_actors'
codec (``encode_msgpack``/``decode_msgpack``, ``encode_json``/``decode_json``)
decodes into the typed message, validating it; pickle round-trips the same
object; the standard json module dumps and loads the equivalent dict (no
validation, no typed object: it does less work). Best of several repeats,
nanoseconds per operation.
"""

from __future__ import annotations

import json
import pickle
import timeit
from collections.abc import Callable
from typing import Any

import msgspec

import vibe_actors as va

from benchmarks._common import main_for


class Small(va.Message):
    agent: str
    seq: int
    ok: bool = True


class Item(msgspec.Struct, frozen=True):
    sku: str
    quantity: int
    price: float
    tags: list[str]


class Medium(va.Message):
    order_id: str
    customer: str
    items: list[Item]
    metadata: dict[str, str]


def messages() -> dict[str, Any]:
    items = [
        Item(sku=f"SKU-{i:05d}", quantity=i, price=9.99 + i, tags=["red", "large", "sale"])
        for i in range(10)
    ]
    return {
        "small": Small(agent="counter", seq=42),
        "medium": Medium(
            order_id="ord-0001",
            customer="customer@example.com",
            items=items,
            metadata={f"key{i}": f"value-{i}" for i in range(8)},
        ),
    }


def per_op_ns(fn: Callable[[], Any], number: int, repeat: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e9


def measure(message: Any, number: int, repeat: int) -> dict[str, Any]:
    kind = type(message)
    packed, text = va.encode_msgpack(message), va.encode_json(message)
    as_dict = msgspec.to_builtins(message)
    pickled = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    std_text = json.dumps(as_dict)
    ops = {
        "msgpack_encode": lambda: va.encode_msgpack(message),
        "msgpack_decode": lambda: va.decode_msgpack(packed, kind),
        "json_encode": lambda: va.encode_json(message),
        "json_decode": lambda: va.decode_json(text, kind),
        "pickle_encode": lambda: pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL),
        "pickle_decode": lambda: pickle.loads(pickled),
        "stdjson_encode": lambda: json.dumps(as_dict),
        "stdjson_decode": lambda: json.loads(std_text),
    }
    result: dict[str, Any] = {
        f"{name}_ns": per_op_ns(fn, number, repeat) for name, fn in ops.items()
    }
    result["bytes"] = {
        "msgpack": len(packed), "json": len(text), "pickle": len(pickled), "stdjson": len(std_text),
    }  # fmt: skip
    result["ratios"] = {
        f"{base}_{op}_vs_{ours}": result[f"{base}_{op}_ns"] / result[f"{ours}_{op}_ns"]
        for ours, base in (("msgpack", "pickle"), ("json", "stdjson"))
        for op in ("encode", "decode")
    }
    return result


def run(quick: bool) -> dict[str, Any]:
    number, repeat = (200, 2) if quick else (20_000, 7)
    return {name: measure(message, number, repeat) for name, message in messages().items()}


def report(results: dict[str, Any]) -> str:
    lines = [f"{'message':<8} {'op':<16} {'ns/op':>9}"]
    for name, r in results.items():
        for key, value in r.items():
            if key.endswith("_ns"):
                lines.append(f"{name:<8} {key[:-3]:<16} {value:>9.0f}")
        lines.extend(f"  {key}: {value:.2f}x" for key, value in r["ratios"].items())
    return "\n".join(lines)


if __name__ == "__main__":
    main_for(__doc__, run, report)
