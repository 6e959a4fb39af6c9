"""The simulator's HTTP API as clients see it: shapes, SSE framing, errors, identity, metrics."""

from __future__ import annotations

import http.client
import json
import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.enginesim.sim import Sim, chunks, parse_sse, stream_text

POD = {"namespace": "team-a", "name": "chat-0", "ip": "127.0.0.1"}
IDENTITY = {"x-modelplane-pod": "team-a/chat-0", "x-modelplane-pod-ip": "127.0.0.1"}
CHAT = {"model": "chat", "messages": [{"role": "user", "content": "say something nice"}]}


@pytest.fixture(scope="module")
def sim() -> Iterator[Sim]:
    s = Sim(
        "--model", "org/model-7b", "--served-model-name", "chat", "chat-alias",
        "--ttft-ms", "0", "--tpot-ms", "0", "--max-model-len", "64",
        env={"MODELPLANE_POD_NAME": "chat-0", "MODELPLANE_POD_NAMESPACE": "team-a"},
    )  # fmt: skip
    yield s
    assert s.stop() == 0


EVERY_KIND_OF_RESPONSE = [
    ("health", "GET", "/health", None, 200),
    ("models", "GET", "/v1/models", None, 200),
    ("metrics", "GET", "/metrics", None, 200),
    ("group", "GET", "/v1/group", None, 200),
    ("chat", "POST", "/v1/chat/completions", CHAT, 200),
    ("chat stream", "POST", "/v1/chat/completions", {**CHAT, "stream": True}, 200),
    ("messages stream", "POST", "/v1/messages", {**CHAT, "max_tokens": 3, "stream": True}, 200),
    ("unknown model", "POST", "/v1/completions", {"model": "nope", "prompt": "x"}, 404),
    ("bad json", "POST", "/v1/completions", b"{", 400),
    ("unknown path", "GET", "/nowhere", None, 404),
    ("wrong method", "GET", "/v1/chat/completions", None, 405),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [case[1:] for case in EVERY_KIND_OF_RESPONSE],
    ids=[case[0] for case in EVERY_KIND_OF_RESPONSE],
)
def test_every_response_names_the_pod(
    sim: Sim, method: str, path: str, body: Any, status: int
) -> None:
    if isinstance(body, dict) and body.get("stream"):
        response, _ = stream_text(sim, path, body)
    else:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = sim.client.request(method, path, content=content if body else None)
    assert response.status_code == status
    assert {k: response.headers.get(k) for k in IDENTITY} == IDENTITY


def test_a_malformed_request_line_gets_400_with_identity(sim: Sim) -> None:
    with socket.create_connection((sim.host, sim.port), timeout=5) as s:
        s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        answer = s.recv(65536).decode()
    assert answer.startswith("HTTP/1.1 400 ")
    assert "x-modelplane-pod: team-a/chat-0" in answer


def test_connections_are_kept_alive_and_streams_are_chunked(sim: Sim) -> None:
    conn = http.client.HTTPConnection(sim.host, sim.port, timeout=5)
    conn.request("GET", "/health")
    first = conn.getresponse()
    first.read()
    sock = conn.sock
    conn.request("POST", "/v1/chat/completions", json.dumps({**CHAT, "stream": True}))
    second = conn.getresponse()
    assert second.getheader("transfer-encoding") == "chunked"
    assert second.getheader("content-type", "").startswith("text/event-stream")
    assert second.read().endswith(b"data: [DONE]\n\n")
    assert conn.sock is sock  # the same TCP connection served both
    conn.close()


def test_models_lists_every_served_name(sim: Sim) -> None:
    body = sim.get("/v1/models").json()
    assert body["object"] == "list"
    assert [(m["id"], m["root"], m["max_model_len"], m["object"]) for m in body["data"]] == [
        ("chat", "org/model-7b", 64, "model"),
        ("chat-alias", "org/model-7b", 64, "model"),
    ]
    assert all(m["owned_by"] == "modelplane-enginesim" for m in body["data"])
    assert all(isinstance(m["created"], int) for m in body["data"])


def test_completions_answer_each_prompt_with_usage(sim: Sim) -> None:
    body = sim.post(
        "/v1/completions", {"model": "chat-alias", "prompt": ["one two three", "four five"]}
    ).json()
    assert body["object"] == "text_completion"
    assert body["model"] == "chat-alias"
    assert body["modelplane_pod"] == POD
    assert [c["index"] for c in body["choices"]] == [0, 1]
    assert [c["finish_reason"] for c in body["choices"]] == ["length", "length"]
    assert [len(c["text"].split()) for c in body["choices"]] == [16, 16]  # default max_tokens
    assert body["usage"] == {"prompt_tokens": 5, "completion_tokens": 32, "total_tokens": 37}


def test_the_answer_depends_on_the_prompt_only(sim: Sim) -> None:
    def text(prompt: str) -> str:
        body = sim.post("/v1/completions", {"prompt": prompt, "max_tokens": 8}).json()
        return str(body["choices"][0]["text"])

    assert text("the same prompt") == text("the same prompt")
    assert text("the same prompt") != text("another prompt")


def test_chat_answer_shape(sim: Sim) -> None:
    body = sim.post("/v1/chat/completions", {**CHAT, "max_completion_tokens": 4}).json()
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert body["modelplane_pod"] == POD
    [choice] = body["choices"]
    assert choice["message"]["role"] == "assistant"
    assert len(choice["message"]["content"].split()) == 4
    assert choice["finish_reason"] == "length"
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}


def test_without_max_tokens_the_model_stops_on_its_own(sim: Sim) -> None:
    body = sim.post(
        "/v1/chat/completions", {"messages": [{"role": "user", "content": "tell me"}]}
    ).json()
    assert body["choices"][0]["finish_reason"] == "stop"
    assert 16 <= body["usage"]["completion_tokens"] < 62  # 64 context - 2 prompt


def test_list_content_parts_count_as_text(sim: Sim) -> None:
    parts = [{"type": "text", "text": "one two"}, {"type": "image_url", "image_url": {}}]
    body = sim.post(
        "/v1/chat/completions",
        {
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": parts},
            ],
            "max_tokens": 1,
        },
    ).json()
    assert body["usage"]["prompt_tokens"] == 4


def test_chat_stream_is_role_then_tokens_then_finish_then_usage(sim: Sim) -> None:
    body = {**CHAT, "max_tokens": 3, "stream": True, "stream_options": {"include_usage": True}}
    _, text = stream_text(sim, "/v1/chat/completions", body)
    assert text.endswith("data: [DONE]\n\n")
    events = list(chunks(text))
    assert {e["object"] for e in events} == {"chat.completion.chunk"}
    assert len({e["id"] for e in events}) == 1
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    tokens = [e["choices"][0]["delta"]["content"] for e in events[1:4]]
    assert len(tokens) == 3 and all(tokens)
    assert [e["choices"][0]["finish_reason"] for e in events[:5]] == [None] * 4 + ["length"]
    assert events[4]["choices"][0]["delta"] == {}
    assert events[5]["choices"] == []
    assert events[5]["usage"] == {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}
    plain = sim.post("/v1/chat/completions", {**CHAT, "max_tokens": 3}).json()
    assert "".join(tokens) == plain["choices"][0]["message"]["content"]


def test_completions_stream_without_usage_ends_with_done(sim: Sim) -> None:
    _, text = stream_text(
        sim, "/v1/completions", {"prompt": "a b c", "max_tokens": 2, "stream": True}
    )
    events = list(chunks(text))
    assert [e["choices"][0]["finish_reason"] for e in events] == [None, "length"]
    assert all("usage" not in e for e in events)
    assert parse_sse(text)[-1] == (None, "[DONE]")


def test_messages_answer_shape(sim: Sim) -> None:
    body = sim.post(
        "/v1/messages",
        {
            "model": "chat",
            "max_tokens": 5,
            "system": "be kind",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi there"}]}],
        },
    ).json()
    assert body["id"].startswith("msg_")
    assert (body["type"], body["role"], body["model"]) == ("message", "assistant", "chat")
    assert body["stop_reason"] == "max_tokens"
    assert body["stop_sequence"] is None
    assert [c["type"] for c in body["content"]] == ["text"]
    assert len(body["content"][0]["text"].split()) == 5
    assert body["usage"] == {"input_tokens": 4, "output_tokens": 5}
    assert body["modelplane_pod"] == POD


def test_messages_stream_event_sequence(sim: Sim) -> None:
    body = {
        "model": "chat",
        "max_tokens": 60,
        "stream": True,
        "messages": [{"role": "user", "content": "tell me"}],
    }
    _, text = stream_text(sim, "/v1/messages", body)
    events = parse_sse(text)
    names = [name for name, _ in events]
    datas = [json.loads(data) for _, data in events]
    assert [d["type"] for d in datas] == names  # `event:` matches the data's type
    tokens = names.count("content_block_delta")
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * tokens,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert datas[0]["message"]["usage"] == {"input_tokens": 2, "output_tokens": 0}
    assert datas[-2]["delta"]["stop_reason"] == "end_turn"  # natural length < 60
    assert datas[-2]["usage"] == {"output_tokens": tokens}
    text_out = "".join(d["delta"]["text"] for d in datas if d["type"] == "content_block_delta")
    assert len(text_out.split()) == tokens


BAD_REQUESTS = [
    ("not json", "/v1/chat/completions", b"{nope", 400, "not valid JSON"),
    ("not an object", "/v1/chat/completions", b"[1]", 400, "must be a JSON object"),
    ("no messages", "/v1/chat/completions", {"model": "chat"}, 400, "messages: field required"),
    ("no prompt", "/v1/completions", {"model": "chat"}, 400, "prompt: field required"),
    ("bad prompt", "/v1/completions", {"prompt": {"a": 1}}, 400, "prompt: must be"),
    ("bad max_tokens", "/v1/completions", {"prompt": "a", "max_tokens": "9"}, 400, "max_tokens: must be an integer"),
    ("zero max_tokens", "/v1/chat/completions", {**CHAT, "max_tokens": 0}, 400, "max_tokens: must be at least 1"),
    ("bad stream", "/v1/chat/completions", {**CHAT, "stream": "yes"}, 400, "stream: must be true or false"),
    ("message without role", "/v1/chat/completions", {"messages": [{"content": "x"}]}, 400, "messages[0].role: field required"),
    ("n above one", "/v1/chat/completions", {**CHAT, "n": 2}, 400, "n: "),
    ("over the context", "/v1/completions", {"prompt": "a b c", "max_tokens": 62}, 400, "maximum context length is 64 tokens"),
    ("unknown model", "/v1/chat/completions", {**CHAT, "model": "gpt-9"}, 404, "The model `gpt-9` does not exist."),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_openai_errors(sim: Sim, path: str, body: Any, status: int, message: str) -> None:
    response = sim.post(path, body)
    assert response.status_code == status
    error = response.json()["error"]
    assert message in error["message"]
    assert error["code"] == status
    assert error["type"] == {400: "BadRequestError", 404: "NotFoundError"}[status]


def test_unknown_model_has_openais_exact_error(sim: Sim) -> None:
    response = sim.post("/v1/completions", {"model": "X", "prompt": "hi"})
    assert response.json() == {
        "error": {
            "message": "The model `X` does not exist.",
            "type": "NotFoundError",
            "param": "model",
            "code": 404,
        }
    }


ANTHROPIC_ERRORS = [
    ("unknown model", {"model": "X", "max_tokens": 1, "messages": [{"role": "user", "content": "a"}]}, 404, "not_found_error", "The model `X` does not exist."),
    ("no max_tokens", {"model": "chat", "messages": [{"role": "user", "content": "a"}]}, 400, "invalid_request_error", "max_tokens: field required"),
    ("no model", {"max_tokens": 1, "messages": [{"role": "user", "content": "a"}]}, 400, "invalid_request_error", "model: field required"),
    ("bad content", {"model": "chat", "max_tokens": 1, "messages": [{"role": "user", "content": 5}]}, 400, "invalid_request_error", "messages[0].content"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "status", "kind", "message"),
    [case[1:] for case in ANTHROPIC_ERRORS],
    ids=[case[0] for case in ANTHROPIC_ERRORS],
)
def test_anthropic_errors(sim: Sim, body: Any, status: int, kind: str, message: str) -> None:
    response = sim.post("/v1/messages", body)
    assert response.status_code == status
    answer = response.json()
    assert answer["type"] == "error"
    assert answer["error"]["type"] == kind
    assert message in answer["error"]["message"]


def _samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_metrics_use_vllm_names_and_count_requests(sim: Sim) -> None:
    response = sim.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    before = _samples(response.text)
    sim.post("/v1/completions", {"model": "chat", "prompt": "one two three", "max_tokens": 4})
    sim.post("/v1/chat/completions", {**CHAT, "max_tokens": 2})
    text = sim.get("/metrics").text
    after = _samples(text)
    label = 'model_name="chat"'
    for family, kind in [
        ("vllm:num_requests_running", "gauge"),
        ("vllm:num_requests_waiting", "gauge"),
        ("vllm:kv_cache_usage_perc", "gauge"),
        ("vllm:gpu_cache_usage_perc", "gauge"),
        ("vllm:prompt_tokens_total", "counter"),
        ("vllm:generation_tokens_total", "counter"),
        ("vllm:request_success_total", "counter"),
        ("vllm:time_to_first_token_seconds", "histogram"),
        ("vllm:time_per_output_token_seconds", "histogram"),
        ("vllm:e2e_request_latency_seconds", "histogram"),
    ]:
        assert f"# TYPE {family} {kind}" in text
        assert f"# HELP {family} " in text
    assert (
        after[f"vllm:prompt_tokens_total{{{label}}}"]
        - before[f"vllm:prompt_tokens_total{{{label}}}"]
        == 6
    )
    assert (
        after[f"vllm:generation_tokens_total{{{label}}}"]
        - before[f"vllm:generation_tokens_total{{{label}}}"]
        == 6
    )
    success = f'vllm:request_success_total{{finished_reason="length",{label}}}'
    assert after[success] - before[success] == 2
    for histogram in ("time_to_first_token_seconds", "e2e_request_latency_seconds"):
        count = f"vllm:{histogram}_count{{{label}}}"
        assert after[count] - before[count] == 2
        assert after[f'vllm:{histogram}_bucket{{{label},le="+Inf"}}'] == after[count]
    tpot = f"vllm:time_per_output_token_seconds_count{{{label}}}"
    assert after[tpot] - before[tpot] == 4  # (4 - 1) + (2 - 1) inter-token gaps
    assert after[f"vllm:num_requests_running{{{label}}}"] == 0


def test_metrics_histogram_buckets_are_cumulative(sim: Sim) -> None:
    counts = [
        float(m.group(1))
        for m in re.finditer(
            r"^vllm:e2e_request_latency_seconds_bucket\{[^}]*\} (\S+)$",
            sim.get("/metrics").text,
            re.M,
        )
    ]
    assert len(counts) > 10
    assert counts == sorted(counts)


def test_standalone_group_view(sim: Sim) -> None:
    assert sim.get("/v1/group").json() == {
        "role": "standalone",
        "group_size": 1,
        "worker_index": 0,
        "leader_address": None,
        "leader_ip": "127.0.0.1",
        "ready": True,
        "workers": [],
    }


def test_request_id_header_is_echoed_and_names_the_answer(sim: Sim) -> None:
    response = sim.client.post(
        "/v1/chat/completions", json={**CHAT, "max_tokens": 1}, headers={"x-request-id": "abc-1"}
    )
    assert response.headers["x-request-id"] == "abc-1"
    assert response.json()["id"] == "chatcmpl-abc-1"  # like vLLM
