"""Prefill/decode hand-off between a producer (127.0.0.2) and a consumer (127.0.0.3)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.enginesim.sim import Sim, chunks, free_port, stream_text

PROMPT = "explain disaggregated serving in a few words please"
PREFILL_PARAMS = {
    "do_remote_decode": True,
    "do_remote_prefill": False,
    "remote_engine_id": None,
    "remote_block_ids": None,
    "remote_host": None,
    "remote_port": None,
}


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[Sim, Sim, int]]:
    side_port = free_port("127.0.0.2")
    producer = Sim(
        "--kv-role", "producer", "--side-channel-port", str(side_port), "--ttft-ms", "0",
        "--tpot-ms", "0", host="127.0.0.2", env={"MODELPLANE_POD_NAME": "prefill-0"},
    )  # fmt: skip
    consumer = Sim(
        "--kv-role", "consumer", "--ttft-ms", "400", "--tpot-ms", "1", host="127.0.0.3",
        env={"MODELPLANE_POD_NAME": "decode-0"},
    )  # fmt: skip
    yield producer, consumer, side_port
    assert producer.stop() == 0
    assert consumer.stop() == 0


def _prefill(producer: Sim, path: str = "/v1/completions") -> dict[str, Any]:
    body: dict[str, Any] = {"kv_transfer_params": PREFILL_PARAMS, "max_tokens": 1}
    if path == "/v1/completions":
        body["prompt"] = PROMPT
    else:
        body["messages"] = [{"role": "user", "content": PROMPT}]
    response = producer.post(path, body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_prefill_answers_one_token_and_names_its_side_channel(pair: tuple[Sim, Sim, int]) -> None:
    producer, _, side_port = pair
    answer = _prefill(producer)
    params = answer["kv_transfer_params"]
    assert params["do_remote_prefill"] is True
    assert params["do_remote_decode"] is False
    assert (params["remote_host"], params["remote_port"]) == ("127.0.0.2", side_port)
    assert params["tp_size"] == 1
    assert params["remote_block_ids"] and all(
        isinstance(b, int) for b in params["remote_block_ids"]
    )
    assert len(params["remote_engine_id"]) == 36
    assert answer["usage"]["completion_tokens"] == 1
    assert answer["choices"][0]["finish_reason"] == "length"
    producer.wait_log("event=side_channel_listening")


@pytest.mark.parametrize("path", ["/v1/completions", "/v1/chat/completions"])
def test_decode_fetches_the_blocks_and_names_the_prefill_pod(
    pair: tuple[Sim, Sim, int], path: str
) -> None:
    producer, consumer, _ = pair
    params = _prefill(producer, path)["kv_transfer_params"]
    body: dict[str, Any] = {"kv_transfer_params": params, "max_tokens": 5}
    if path == "/v1/completions":
        body["prompt"] = PROMPT
    else:
        body["messages"] = [{"role": "user", "content": PROMPT}]
    response = consumer.post(path, body)
    assert response.status_code == 200, response.text
    assert response.headers["x-modelplane-prefill-pod"] == "default/prefill-0"
    assert response.headers["x-modelplane-pod"] == "default/decode-0"
    answer = response.json()
    assert answer["modelplane_prefill_pod"] == {
        "namespace": "default",
        "name": "prefill-0",
        "ip": "127.0.0.2",
    }
    assert answer["usage"]["completion_tokens"] == 5
    # The blocks are handed over once.
    again = consumer.post(path, body)
    assert again.status_code == 400
    assert "unknown or expired blocks" in again.json()["error"]["message"]


def test_a_streamed_decode_carries_the_prefill_pod(pair: tuple[Sim, Sim, int]) -> None:
    producer, consumer, _ = pair
    params = _prefill(producer)["kv_transfer_params"]
    body = {"prompt": PROMPT, "kv_transfer_params": params, "max_tokens": 3, "stream": True}
    response, text = stream_text(consumer, "/v1/completions", body)
    assert response.status_code == 200
    assert response.headers["x-modelplane-prefill-pod"] == "default/prefill-0"
    assert [c["choices"][0]["finish_reason"] for c in chunks(text)] == [None, None, "length"]


@pytest.mark.parametrize(
    ("max_tokens", "said"), [(5, "not 5"), (None, "not 16")], ids=["five", "unset"]
)
def test_a_prefill_must_ask_for_exactly_one_token(
    pair: tuple[Sim, Sim, int], max_tokens: int | None, said: str
) -> None:
    producer, _, _ = pair
    body: dict[str, Any] = {"prompt": PROMPT, "kv_transfer_params": PREFILL_PARAMS}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    response = producer.post("/v1/completions", body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "max_tokens"
    assert "exactly 1 token" in error["message"] and said in error["message"]


def test_expired_blocks_are_refused() -> None:
    side_port = free_port("127.0.0.4")
    producer = Sim(
        "--kv-role", "producer", "--side-channel-port", str(side_port), "--kv-lease-ms", "50",
        "--ttft-ms", "0", host="127.0.0.4",
    )  # fmt: skip
    consumer = Sim("--kv-role", "consumer", "--ttft-ms", "0", host="127.0.0.5")
    try:
        params = _prefill(producer)["kv_transfer_params"]
        time.sleep(0.2)  # past the 50 ms lease
        body = {"prompt": PROMPT, "kv_transfer_params": params, "max_tokens": 2}
        response = consumer.post("/v1/completions", body)
        assert response.status_code == 400
        message = response.json()["error"]["message"]
        assert f"127.0.0.4:{side_port}" in message and "unknown or expired blocks" in message
    finally:
        producer.stop()
        consumer.stop()


def test_without_the_hand_off_the_consumer_prefills_itself(pair: tuple[Sim, Sim, int]) -> None:
    _, consumer, _ = pair
    began = time.monotonic()
    response = consumer.post("/v1/completions", {"prompt": PROMPT, "max_tokens": 2})
    assert time.monotonic() - began >= 0.4
    assert "x-modelplane-prefill-pod" not in response.headers


def _decode_params(side_port: int, **changes: Any) -> dict[str, Any]:
    params = {
        "do_remote_prefill": True,
        "do_remote_decode": False,
        "remote_engine_id": "0000",
        "remote_block_ids": [1],
        "remote_host": "127.0.0.2",
        "remote_port": side_port,
    }
    return {**params, **changes}


REFUSED_DECODES = [
    ("bogus engine id", {}, "127.0.0.2:{side}", "unknown engine id 0000"),
    ("unreachable port", {"remote_port": "{dead}"}, "127.0.0.2:{dead}", "connection refused"),
    ("no host", {"remote_host": None}, "", "kv_transfer_params.remote_host"),
    ("no blocks", {"remote_block_ids": []}, "", "kv_transfer_params.remote_block_ids"),
]


@pytest.mark.parametrize(
    ("changes", "where", "reason"),
    [c[1:] for c in REFUSED_DECODES],
    ids=[c[0] for c in REFUSED_DECODES],
)
def test_a_failed_hand_off_is_a_400_naming_the_producer(
    pair: tuple[Sim, Sim, int], changes: dict[str, Any], where: str, reason: str
) -> None:
    _, consumer, side_port = pair
    dead = free_port("127.0.0.2")
    fill = {"side": side_port, "dead": dead}
    changes = {k: int(v.format(**fill)) if isinstance(v, str) else v for k, v in changes.items()}
    body = {"prompt": PROMPT, "kv_transfer_params": _decode_params(side_port, **changes)}
    response = consumer.post("/v1/completions", body)
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert where.format(**fill) in message
    assert reason in message


ROLE_MISMATCHES = [
    ("prefill on a consumer", "consumer", PREFILL_PARAMS, "kv-role is consumer"),
    ("decode on a producer", "producer", _decode_params(5600), "kv-role is producer"),
]


@pytest.mark.parametrize(
    ("role", "params", "message"),
    [c[1:] for c in ROLE_MISMATCHES],
    ids=[c[0] for c in ROLE_MISMATCHES],
)
def test_kv_params_the_role_cannot_serve_are_refused(
    pair: tuple[Sim, Sim, int], role: str, params: dict[str, Any], message: str
) -> None:
    producer, consumer, _ = pair
    sim = producer if role == "producer" else consumer
    response = sim.post("/v1/completions", {"prompt": PROMPT, "kv_transfer_params": params})
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]


def test_an_engine_without_kv_role_refuses_kv_params() -> None:
    sim = Sim("--ttft-ms", "0")
    try:
        response = sim.post(
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "x"}], "kv_transfer_params": PREFILL_PARAMS},
        )
        assert response.status_code == 400
        assert "kv-role is none" in response.json()["error"]["message"]
        plain = {"do_remote_decode": False, "do_remote_prefill": False}
        harmless = sim.post("/v1/completions", {"prompt": "x", "kv_transfer_params": plain})
        assert harmless.status_code == 200
    finally:
        sim.stop()
