"""The router's pure parts: prompts and keys, spliced bodies, the two choices, pods, flags."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from typing import Any

import pytest
from pd_router.__main__ import config, parser
from pd_router.affinity import Ring
from pd_router.body import decode_fields, prefill_fields, splice
from pd_router.leastload import EngineLoad, choose
from pd_router.load import DecodeLoad, decode_load, exposition
from pd_router.pods import Pod, parse_static, ready_pods
from pd_router.prompt import prefix_key, prompt_text
from pd_router.scrape import parse_load
from prometheus_client.parser import text_string_to_metric_families

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"


@pytest.mark.parametrize(
    ("path", "body", "text"),
    [
        (COMPLETIONS, {"prompt": "hello there"}, "hello there"),
        (COMPLETIONS, {"prompt": ["a", "b"]}, "a\nb"),
        (COMPLETIONS, {"prompt": [1, 2, 3]}, "1\n2\n3"),
        (COMPLETIONS, {"prompt": [[1, 2], [3]]}, "1 2\n3"),
        (COMPLETIONS, {"prompt": None}, ""),
        (CHAT, {"messages": [{"role": "system", "content": "be brief"},
                             {"role": "user", "content": "hi"}]}, "be brief\nhi"),
        (CHAT, {"messages": [{"role": "user", "content": [
            {"type": "text", "text": "look "}, {"type": "image_url", "image_url": {}},
            {"type": "text", "text": "here"}]}]}, "look here"),
        (CHAT, {"messages": "not a list"}, ""),
        (CHAT, {"messages": [3, {"content": None}]}, ""),
    ],
)  # fmt: skip
def test_prompt_text_reads_what_the_engine_prefills(
    path: str, body: dict[str, Any], text: str
) -> None:
    assert prompt_text(path, body) == text


def test_prompts_sharing_their_leading_blocks_share_a_key() -> None:
    shared = "x" * 40
    assert prefix_key(shared + "tail one", 10, 4) == prefix_key(shared + "other tail", 10, 4)
    assert prefix_key("y" + shared[1:] + "tail", 10, 4) != prefix_key(shared + "tail", 10, 4)
    # Shorter than one block: the whole prompt is the key.
    assert prefix_key("short", 10, 4) != prefix_key("shore", 10, 4)
    # Only complete blocks count: 25 characters with 10-character blocks hash 20.
    assert prefix_key("a" * 20 + "bcdef", 10, 4) == prefix_key("a" * 20 + "zzzzz", 10, 4)


def _joined(parts: list[Any]) -> Any:
    return json.loads(b"".join(bytes(p) for p in parts))


def test_splicing_sets_fields_over_the_clients_own() -> None:
    body = b'{"prompt": "p", "stream": true, "stream_options": {"include_usage": true},\n "max_tokens": 50}  \n'
    spliced = _joined(splice(body, False, prefill_fields(COMPLETIONS)))
    assert spliced["prompt"] == "p"
    assert spliced["max_tokens"] == 1
    assert spliced["stream"] is False
    assert spliced["stream_options"] is None
    assert spliced["kv_transfer_params"]["do_remote_decode"] is True
    assert "max_completion_tokens" not in spliced
    chat = _joined(
        splice(b'{"messages": [], "max_completion_tokens": 9}', False, prefill_fields(CHAT))
    )
    assert chat["max_completion_tokens"] == 1


def test_splicing_an_empty_object_and_refusing_a_non_object() -> None:
    assert _joined(splice(b"{}", True, decode_fields({"a": 1}))) == {"kv_transfer_params": {"a": 1}}
    with pytest.raises(ValueError, match="closing brace"):
        splice(b"[1, 2]", False, {"x": 1})


def test_splicing_does_not_copy_the_clients_body() -> None:
    body = b'{"prompt": "' + b"w " * 1000 + b'"}'
    parts = splice(body, False, decode_fields({"k": "v"}))
    assert [p.obj is body for p in parts if isinstance(p, memoryview)] == [True, True]


PODS = [f"10.0.0.{i}:8000" for i in range(1, 5)]


def test_a_key_keeps_its_pod_while_the_pod_stays() -> None:
    ring = Ring(PODS)
    keys = range(0, 2**64, 2**64 // 1000)
    before = {k: ring.choose(k, {}, 1.25) for k in keys}
    smaller = Ring(PODS[:3])
    after = {k: smaller.choose(k, {}, 1.25) for k in keys}
    for key, choice in before.items():
        assert choice is not None and choice.owner
        if choice.pod != PODS[3]:  # only the removed pod's keys move
            assert after[key] == choice
    owners = Counter(c.pod for c in before.values() if c is not None)
    assert set(owners) == set(PODS) and min(owners.values()) > 100, owners


def test_a_loaded_owner_spills_to_the_next_pod_within_the_bound() -> None:
    ring = Ring(PODS)
    key = 12345
    owner, second = ring.order(key)[:2]
    load = {owner: 3, second: 0}
    bound = math.ceil(1.25 * (3 + 1) / 4)  # 2: the owner at 3 is over it
    choice = ring.choose(key, load, 1.25)
    assert choice is not None and choice.pod == second and not choice.owner
    assert load[second] + 1 <= bound


def test_a_hot_key_never_puts_a_pod_over_its_bound() -> None:
    ring = Ring(PODS)
    load: Counter[str] = Counter()
    for _ in range(200):  # one key, every request still in flight
        total = sum(load.values())
        choice = ring.choose(7, load, 1.25)
        assert choice is not None
        load[choice.pod] += 1
        assert load[choice.pod] <= math.ceil(1.25 * (total + 1) / len(PODS))


def test_excluded_pods_are_never_chosen() -> None:
    ring = Ring(PODS[:2])
    first = ring.order(99)[0]
    choice = ring.choose(99, {}, 1.25, exclude=[first])
    assert choice is not None and choice.pod != first
    assert ring.choose(99, {}, 1.25, exclude=PODS[:2]) is None
    assert Ring(()).choose(99, {}, 1.25) is None


def test_round_robin_takes_the_pods_in_turn() -> None:
    ring = Ring(PODS[:3])
    picks = [ring.rotate(turn) for turn in range(6)]
    assert [c.pod for c in picks if c is not None] == PODS[:3] * 2
    assert ring.rotate(0, exclude=PODS[:1]) == ring.rotate(2, exclude=PODS[:1])
    assert ring.rotate(0, exclude=PODS[:3]) is None


def test_decode_goes_to_the_least_loaded_pod() -> None:
    pods = ["a", "b", "c"]
    reported = {"a": EngineLoad(waiting=0, kv_usage=0.9), "b": EngineLoad(waiting=2)}
    # a: 1 + 0 + 4 * 0.9 = 4.6; b: 0 + 2 = 2; c: 3 in flight, nothing reported = 3.
    assert choose(pods, {"a": 1, "c": 3}, reported, 0) == "b"
    assert choose(pods, {"a": 1, "c": 3}, reported, 0, exclude=["b"]) == "c"
    assert choose(pods, {}, {}, 0, exclude=pods) is None


def test_equal_decode_pods_share_the_traffic() -> None:
    picks = Counter(choose(["a", "b", "c"], {}, {}, turn) for turn in range(30))
    assert picks == {"a": 10, "b": 10, "c": 10}


def test_engine_load_is_read_from_vllm_metrics() -> None:
    page = (
        "# HELP vllm:num_requests_waiting Number of requests waiting.\n"
        "# TYPE vllm:num_requests_waiting gauge\n"
        'vllm:num_requests_waiting{model_name="a"} 3.0\n'
        'vllm:num_requests_waiting{model_name="b"} 1.0\n'
        'vllm:kv_cache_usage_perc{model_name="a"} 0.25\n'
        'vllm:num_requests_running{model_name="a"} 7.0\n'
        "vllm:kv_cache_usage_perc garbage\n"
    )
    assert parse_load(page) == EngineLoad(waiting=4.0, kv_usage=0.25, running=7.0)


def test_the_decode_load_sums_every_pods_engine_figures() -> None:
    reported = {"a": EngineLoad(waiting=1, running=3), "b": EngineLoad(waiting=0, running=2)}
    # the engines count at least what the router has in flight to them: their figures stand
    assert decode_load(["a", "b"], {"a": 3, "b": 1}, reported) == DecodeLoad(5, 1, 2, 0)


def test_requests_sent_since_an_engines_figure_count_as_running() -> None:
    reported = {"a": EngineLoad(waiting=2, running=4)}
    # a: 9 in flight, the engine's figure counted 6 of them: 3 more running (4 + 3)
    # b: never scraped (or its last scrape failed): its 3 in flight count as running
    # c: nothing reported, nothing in flight
    assert decode_load(["a", "b", "c"], {"a": 9, "b": 3}, reported) == DecodeLoad(10, 2, 1, 2)
    assert decode_load([], {}, {}) == DecodeLoad(0, 0, 0, 0)


def test_the_load_page_is_prometheus_text_with_the_engines_gauge_names() -> None:
    page = exposition(DecodeLoad(running=7, waiting=2.5, engine_pods=1, router_pods=2)).decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(page)
        for s in family.samples
    }
    assert samples == {
        ("vllm:num_requests_running", ()): 7.0,
        ("vllm:num_requests_waiting", ()): 2.5,
        ("modelplane_pd_router_load_pods", (("figure", "engine"),)): 1.0,
        ("modelplane_pd_router_load_pods", (("figure", "router"),)): 2.0,
    }


def _slice(endpoints: list[dict[str, Any]], ports: list[dict[str, Any]]) -> dict[str, Any]:
    return {"metadata": {"name": "s"}, "endpoints": endpoints, "ports": ports}


def test_ready_pods_are_read_from_endpoint_slices() -> None:
    slices = [
        _slice(
            [
                {"addresses": ["10.0.0.2"], "conditions": {"ready": True},
                 "targetRef": {"kind": "Pod", "name": "decode-b"}},
                {"addresses": ["10.0.0.1"], "conditions": {}, "targetRef": {"name": "decode-a"}},
                {"addresses": ["10.0.0.3"], "conditions": {"ready": False}},
                {"addresses": ["10.0.0.4"], "conditions": {"ready": True, "terminating": True}},
                {"addresses": [], "conditions": {"ready": True}},
            ],
            [{"name": "metrics", "port": 9000}, {"name": "http", "port": 8000}],
        ),
        _slice([{"addresses": ["10.0.0.1"], "conditions": {"ready": True}}],
               [{"name": "http", "port": 8000}]),
        _slice([{"addresses": ["10.0.0.9"]}], []),
    ]  # fmt: skip
    assert ready_pods(slices, "http") == [
        Pod("10.0.0.1", 8000, "decode-a"),
        Pod("10.0.0.2", 8000, "decode-b"),
    ]
    # No port of that name: the slice's first port.
    assert [p.port for p in ready_pods(slices[:1], "grpc")] == [9000, 9000]


def test_fixed_pod_lists_are_parsed_and_bad_entries_named() -> None:
    assert parse_static("10.0.0.2:8000, [fd00::1]:8001,10.0.0.2:8000") == [
        Pod("10.0.0.2", 8000),
        Pod("fd00::1", 8001),
    ]
    assert Pod("fd00::1", 8001).address == "[fd00::1]:8001"
    with pytest.raises(ValueError, match=re.escape("address '10.0.0.2': expected host:port")):
        parse_static("10.0.0.2")
    with pytest.raises(ValueError, match="pod port 0"):
        parse_static("10.0.0.2:0")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "--prefill-service or --prefill-pods: give exactly one"),
        (["--prefill-service", "p", "--prefill-pods", "a:1", "--decode-service", "d"],
         "--prefill-service or --prefill-pods: give exactly one"),
        (["--prefill-service", "p", "--decode-pods", ""], "--decode-pods: at least one pod"),
        (["--prefill-pods", "a:99999", "--decode-service", "d"],
         "--prefill-pods: address 'a:99999': expected host:port"),
        (["--prefill-service", "p", "--decode-service", "d", "--balance", "0.5"],
         "--balance: out of range"),
        (["--prefill-service", "p", "--decode-service", "d", "--max-body-mib", "0"],
         "--max-body-mib: out of range"),
        (["--prefill-service", "p", "--decode-service", "d", "--shutdown-grace", "-1"],
         "--shutdown-grace: out of range"),
        (["--prefill-service", "p", "--decode-service", "d", "--listen", "nohost"],
         "--listen: address 'nohost': expected host:port"),
    ],
)  # fmt: skip
def test_an_unusable_command_line_is_named(argv: list[str], message: str) -> None:
    with pytest.raises(ValueError) as error:
        config(parser().parse_args(argv))
    assert str(error.value) == message


def test_the_command_line_sets_the_tuning() -> None:
    args = parser().parse_args(
        ["--prefill-service", "p", "--decode-pods", "127.0.0.1:8000", "--min-prefill-chars", "7",
         "--listen", "127.0.0.1:9000", "--balance", "2", "--max-body-mib", "0.5",
         "--shutdown-grace", "12.5"]
    )  # fmt: skip
    settings = config(args)
    assert settings.max_body_bytes == 512 * 1024
    assert settings.shutdown_grace_s == 12.5
    assert settings.prefill.service == "p"
    assert settings.decode.pods == (Pod("127.0.0.1", 8000),)
    assert (settings.host, settings.port) == ("127.0.0.1", 9000)
    assert settings.tuning.min_prefill_chars == 7
    assert settings.tuning.balance == 2.0
