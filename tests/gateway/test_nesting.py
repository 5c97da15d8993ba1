"""One nesting limit for every input, below what every encoder on the way out handles."""

from __future__ import annotations

import pytest

from vibe_actors import (
    MAX_NESTING,
    CodecError,
    Message,
    SupervisorSpec,
    WorkerSpec,
    decode_json,
    decode_msgpack,
    encode_msgpack,
)
from vibe_actors.agents.pubsub import PubSub


class Free(Message):
    data: object = None


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_the_codec_refuses_more_than_the_limit_and_takes_the_limit():
    at_limit = f'{{"type":"Free","data":{nested(MAX_NESTING - 1)}}}'.encode()
    assert decode_json(at_limit, Free).data is not None
    too_deep = f'{{"type":"Free","data":{nested(MAX_NESTING)}}}'.encode()
    with pytest.raises(CodecError, match="nesting too deep"):
        decode_json(too_deep, Free)
    data: object = []
    for _ in range(MAX_NESTING):
        data = [data]
    with pytest.raises(CodecError, match="nesting too deep"):
        decode_msgpack(encode_msgpack(Free(data=data)), Free)


def test_a_publish_nested_985_deep_is_422_and_streams_live_on(gateway, tmp_path):
    root = SupervisorSpec(name="root", children=(WorkerSpec(name="pubsub", agent=PubSub),))
    _, client = gateway(root, system_config={"data_dir": str(tmp_path)})
    deep = '{"topic":"t","data":' + nested(985) + "}"
    refused = client.post(
        "/v1/agents/pubsub/Publish", content=deep, headers={"content-type": "application/json"}
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["type"] == "/problems/nesting-too-deep"
    shallow = '{"topic":"t","data":' + nested(50) + "}"
    accepted = client.post(
        "/v1/agents/pubsub/Publish", content=shallow, headers={"content-type": "application/json"}
    )
    assert accepted.status_code == 200
    # Wide but shallow bodies (many brackets, little depth) are fine.
    wide = {"topic": "t", "data": [[1]] * 5000}
    assert client.post("/v1/agents/pubsub/Publish", json=wide).status_code == 200
