"""The simulator's pure parts: generation, limits, KV records, group hellos, settings, metrics."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from modelplane_enginesim import generation
from modelplane_enginesim.cli import parse_settings
from modelplane_enginesim.config import Identity
from modelplane_enginesim.engine import Engine, Job
from modelplane_enginesim.group import check_hello, split_address
from modelplane_enginesim.inference import ApiError, Plan, Prompt, decide
from modelplane_enginesim.kvtransfer import BlockStore, KvRequest, parse_params
from modelplane_enginesim.logs import format_line
from modelplane_enginesim.metrics import Metrics

# -- generation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"), [("", 0), ("one", 1), ("  two   words\n", 2), ("a\tb c", 3)]
)
def test_a_token_is_a_whitespace_separated_word(text: str, tokens: int) -> None:
    assert generation.count_tokens(text) == tokens


def test_generation_is_deterministic_and_well_formed() -> None:
    seed = generation.seed_of("hello")
    assert seed == generation.seed_of("hello")  # CRC-32: the same in every process
    chat = generation.answer_text(seed, 10, leading_space=False)
    completion = generation.answer_text(seed, 10, leading_space=True)
    assert completion == " " + chat
    assert len(chat.split()) == 10
    lengths = {generation.natural_length(generation.seed_of(str(i))) for i in range(500)}
    assert min(lengths) == generation.MIN_NATURAL_LENGTH
    assert max(lengths) == generation.MAX_NATURAL_LENGTH


# -- limits -----------------------------------------------------------------------


def _plan(words: int, max_tokens: int | None, ignore_eos: bool = False) -> Plan:
    text = " ".join(["w"] * words)
    return Plan("m", (Prompt(text, words),), max_tokens, ignore_eos=ignore_eos)


NATURAL = generation.natural_length(generation.seed_of(" ".join(["w"] * 10)))
DECISIONS = [
    # (case, prompt words, max_tokens, ignore_eos, max_model_len, single token, length, finish)
    ("max_tokens reached", 10, 3, False, 100, False, 3, "length"),
    ("natural stop first", 10, 90, False, 100, False, NATURAL, "stop"),
    ("ignore_eos runs to max_tokens", 10, 90, True, 100, False, 90, "length"),
    ("no max_tokens: up to the context", 10, None, True, 30, False, 20, "length"),
    ("prefill-only request", 10, 50, False, 100, True, 1, "length"),
    ("exactly fills the context", 10, 90, True, 100, False, 90, "length"),
]


@pytest.mark.parametrize(
    ("words", "max_tokens", "ignore_eos", "limit", "single", "length", "finish"),
    [c[1:] for c in DECISIONS],
    ids=[c[0] for c in DECISIONS],
)
def test_decide_lengths(
    words: int,
    max_tokens: int | None,
    ignore_eos: bool,
    limit: int,
    single: bool,
    length: int,
    finish: str,
) -> None:
    outcome = decide(
        _plan(words, max_tokens, ignore_eos),
        "m",
        limit,
        outcome_id="x",
        created=0,
        single_token=single,
    )
    assert (outcome.lengths, outcome.finish) == ((length,), (finish,))
    assert outcome.usage()["total_tokens"] == words + length


@pytest.mark.parametrize(
    ("words", "max_tokens", "param", "message"),
    [
        (
            10,
            91,
            "max_tokens",
            "you requested 101 tokens (10 in the messages, 91 in the completion)",
        ),
        (100, None, "prompt", "leaves no room"),
    ],
)
def test_decide_refuses_what_does_not_fit(
    words: int, max_tokens: int | None, param: str, message: str
) -> None:
    with pytest.raises(ApiError) as caught:
        decide(_plan(words, max_tokens), "m", 100, outcome_id="x", created=0)
    assert (caught.value.status, caught.value.param) == (400, param)
    assert message in caught.value.message


# -- KV transfer ----------------------------------------------------------------------

GOOD_DECODE = {
    "do_remote_prefill": True,
    "remote_engine_id": "e",
    "remote_block_ids": [3, 4],
    "remote_host": "10.0.0.5",
    "remote_port": 5600,
}
PARAMS = [
    ("absent", None, None),
    ("both false", {"do_remote_decode": False, "do_remote_prefill": False}, None),
    ("prefill", {"do_remote_decode": True}, KvRequest("prefill")),
    ("decode", GOOD_DECODE, KvRequest("decode", "e", (3, 4), "10.0.0.5", 5600)),
    ("port as text", {**GOOD_DECODE, "remote_port": "5601"},
     KvRequest("decode", "e", (3, 4), "10.0.0.5", 5601)),
    ("not an object", [1], "kv_transfer_params: must be an object"),
    ("both true", {"do_remote_decode": True, "do_remote_prefill": True}, "cannot both be true"),
    ("flag not bool", {"do_remote_decode": "yes"}, "do_remote_decode: must be true or false"),
    ("no engine", {**GOOD_DECODE, "remote_engine_id": None}, "remote_engine_id"),
    ("bad blocks", {**GOOD_DECODE, "remote_block_ids": ["a"]}, "remote_block_ids"),
    ("bad port", {**GOOD_DECODE, "remote_port": 70000}, "remote_port: must be a port number"),
]  # fmt: skip


@pytest.mark.parametrize(("value", "expected"), [c[1:] for c in PARAMS], ids=[c[0] for c in PARAMS])
def test_parse_kv_transfer_params(value: object, expected: KvRequest | str | None) -> None:
    if isinstance(expected, str):
        with pytest.raises(ApiError) as caught:
            parse_params(value)
        assert caught.value.status == 400
        assert expected in caught.value.message
    else:
        assert parse_params(value) == expected


def test_kv_request_address_brackets_ipv6() -> None:
    assert KvRequest("decode", host="fd00::1", port=5600).address == "[fd00::1]:5600"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_block_records_are_taken_once_by_their_engine_within_the_ttl() -> None:
    clock = FakeClock()
    store = BlockStore("engine-a", Identity("ns", "p", "10.0.0.1"), ttl_s=120, clock=clock)
    first = store.put("req-1", 40)  # 40 tokens: 3 blocks of 16
    second = store.put("req-2", 0)
    assert len(first) == 3 and len(second) == 1 and set(first).isdisjoint(second)
    with pytest.raises(ValueError, match="unknown engine id engine-b"):
        store.take("engine-b", first)
    with pytest.raises(ValueError, match="unknown or expired blocks"):
        store.take("engine-a", (first[0], second[0]))  # blocks of two records
    record = store.take("engine-a", first)
    assert (record.request_id, record.prompt_tokens) == ("req-1", 40)
    with pytest.raises(ValueError, match="unknown or expired blocks"):
        store.take("engine-a", first)
    clock.now += 121
    with pytest.raises(ValueError, match="unknown or expired blocks"):
        store.take("engine-a", second)
    assert len(store) == 0


# -- group -------------------------------------------------------------------------

HELLOS = [
    ("good", {"worker_index": 2, "pod": "w", "namespace": "n", "ip": "1.2.3.4"}, None),
    ("leader index", {"worker_index": 0}, "worker_index 0 is not in 1..2"),
    ("beyond the group", {"worker_index": 3}, "worker_index 3 is not in 1..2"),
    ("not a number", {"worker_index": "1"}, "worker_index '1'"),
    ("other group size", {"worker_index": 1, "group_size": 4}, "group size 4, leader has 3"),
    ("not an object", [1], "not a JSON object"),
]


@pytest.mark.parametrize(("hello", "error"), [c[1:] for c in HELLOS], ids=[c[0] for c in HELLOS])
def test_check_hello(hello: Any, error: str | None) -> None:
    line = json.dumps(hello).encode()
    if error is None:
        member = check_hello(line, 3)
        assert (member.worker_index, member.pod, member.ip) == (2, "w", "1.2.3.4")
    else:
        with pytest.raises(ValueError, match=error.replace("(", r"\(")):
            check_hello(line, 3)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("leader.lws.ns", ("leader.lws.ns", 29500)),
        ("10.0.0.1:7000", ("10.0.0.1", 7000)),
        ("[fd00::1]:7000", ("fd00::1", 7000)),
        ("fd00::1", ("fd00::1", 29500)),
    ],
)
def test_split_address(address: str, expected: tuple[str, int]) -> None:
    assert split_address(address, 29500) == expected


# -- settings ----------------------------------------------------------------------


def test_settings_default_from_the_environment() -> None:
    env = {
        "MODELPLANE_POD_NAME": "p",
        "MODELPLANE_POD_NAMESPACE": "ns",
        "MODELPLANE_POD_IP": "10.1.1.1",
        "LWS_GROUP_SIZE": "4",
        "LWS_WORKER_INDEX": "2",
        "LWS_LEADER_ADDRESS": "lead",
        "VLLM_NIXL_SIDE_CHANNEL_PORT": "5700",
    }
    s = parse_settings(["--host", "0.0.0.0", "--kv-role", "both"], env)
    assert s.pod == Identity("ns", "p", "10.1.1.1")
    assert (s.group_size, s.worker_index, s.leader_address, s.group_role) == (
        4,
        2,
        "lead",
        "worker",
    )
    assert (s.side_channel_host, s.side_channel_port) == ("10.1.1.1", 5700)
    assert s.produces_kv and s.consumes_kv
    assert s.served_model_names == ("simulated-model",)
    flags = parse_settings(
        ["--host", "h", "--pod-ip", "9.9.9.9", "--group-size", "1", "--worker-index", "0"], env
    )
    assert (flags.pod.ip, flags.group_role, flags.side_channel_host) == (
        "9.9.9.9",
        "standalone",
        "9.9.9.9",
    )


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--worker-index", "1", "--group-size", "2"], {}, "needs --leader-address"),
        (["--worker-index", "2", "--group-size", "2"], {}, "out of range for group size 2"),
        ([], {"LWS_GROUP_SIZE": "two"}, "LWS_GROUP_SIZE='two' is not an integer"),
        (["--max-concurrency", "0"], {}, "--max-concurrency must be at least 1"),
        (["--kv-role", "kv_both"], {}, "invalid choice"),
        (["--tls-cert", "server.crt"], {}, "--tls-cert and --tls-key go together"),
    ],
)
def test_bad_settings_stop_with_a_usage_error(
    argv: list[str], env: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        parse_settings(["--host", "127.0.0.1", *argv], env)
    assert caught.value.code == 2
    assert message in capsys.readouterr().err


# -- engine, metrics, logs ---------------------------------------------------------------


def test_a_closed_stream_frees_its_slot_and_counts_as_aborted() -> None:
    metrics = Metrics("m", 1)

    async def scenario() -> tuple[int, int]:
        engine = Engine(metrics, 1, ttft_s=0.0, tpot_s=0.001)
        tokens = engine.tokens(Job(5, (10,), ("length",), arrived=engine.now()))
        assert await anext(tokens) == 0
        assert engine.running == 1
        await tokens.aclose()
        await engine.complete(Job(2, (3,), ("length",), arrived=engine.now()))
        return engine.running, engine.waiting

    assert asyncio.run(scenario()) == (0, 0)
    assert metrics.finished == {"stop": 0, "length": 1, "abort": 1}
    assert metrics.prompt_tokens == 7
    assert metrics.generation_tokens == 1 + 3
    assert (metrics.ttft.count, metrics.tpot.count, metrics.e2e.count) == (2, 2, 2)


def test_metric_lines_escape_labels_and_write_prometheus_numbers() -> None:
    metrics = Metrics('we"ird', 4)
    metrics.ttft.observe(0.03)
    text = metrics.render(running=1, waiting=2)
    assert 'vllm:num_requests_waiting{model_name="we\\"ird"} 2.0' in text
    assert 'vllm:kv_cache_usage_perc{model_name="we\\"ird"} 0.25' in text
    assert 'vllm:time_to_first_token_seconds_bucket{model_name="we\\"ird",le="0.02"} 0.0' in text
    assert 'vllm:time_to_first_token_seconds_bucket{model_name="we\\"ird",le="0.04"} 1.0' in text
    assert 'vllm:time_to_first_token_seconds_bucket{model_name="we\\"ird",le="+Inf"} 1.0' in text
    assert text.endswith("\n")


def test_log_lines_split_back_into_fields() -> None:
    line = format_line("group_join", {"pod": "ns/p", "error": "no route", "n": 3, "x": None}, 0.5)
    assert (
        line == 'ts=1970-01-01T00:00:00.500Z event=group_join pod=ns/p error="no route" n=3 x=null'
    )
