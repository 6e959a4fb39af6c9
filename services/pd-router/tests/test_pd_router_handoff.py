"""The router in front of simulated engines (real processes on loopback), through the SDKs.

`Fleet` starts `prefill` producer simulators (127.0.0.2, .3, ...; pods
`prefill-<i>`) and `decode` consumer simulators (127.0.0.10, .11, ...; pods
`decode-<i>`), then a `python -m pd_router` process in front of them, given the
pods as fixed lists; it is up once `/readyz` answers 200. The simulated decode
engines fetch the prefilled blocks from the producer named in
`kv_transfer_params` and refuse parameters no producer issued, so an answer
carrying `X-Modelplane-Prefill-Pod` proves the whole hand-off happened.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.enginesim.sim import Sim, free_port, wait_until

MODEL = "simulated-model"
START_TIMEOUT_S = 10.0


def sample(text: str, name: str, labels: Mapping[str, str] = {}) -> float:
    """The sum of the samples of `name` carrying `labels` in a Prometheus text page."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or line.partition("{")[0].partition(" ")[0] != name:
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


class Fleet:
    def __init__(
        self,
        log_dir: Path,
        prefill: int = 2,
        decode: int = 2,
        prefill_args: tuple[str, ...] = ("--ttft-ms", "5", "--tpot-ms", "0"),
        decode_args: tuple[str, ...] = ("--ttft-ms", "5", "--tpot-ms", "1"),
        router_args: tuple[str, ...] = ("--min-prefill-chars", "40", "--max-body-mib", "1"),
    ) -> None:
        self.prefill: list[Sim] = []
        self.decode: list[Sim] = []
        try:
            for i in range(prefill):
                host = f"127.0.0.{2 + i}"
                side = free_port(host)
                self.prefill.append(
                    Sim("--kv-role", "producer", "--side-channel-port", str(side),
                        *prefill_args, host=host, env={"MODELPLANE_POD_NAME": f"prefill-{i}"})
                )  # fmt: skip
            for i in range(decode):
                self.decode.append(
                    Sim("--kv-role", "consumer", *decode_args, host=f"127.0.0.{10 + i}",
                        env={"MODELPLANE_POD_NAME": f"decode-{i}"})
                )  # fmt: skip
            self._start_router(log_dir, router_args)
        except BaseException:
            self.stop()
            raise

    def _start_router(self, log_dir: Path, router_args: tuple[str, ...]) -> None:
        port, status = free_port(), free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.status_url = f"http://127.0.0.1:{status}"
        self.log_path = log_dir / "router.log"
        with self.log_path.open("w") as log:
            self.router = subprocess.Popen(
                [sys.executable, "-m", "pd_router", "--listen", f"127.0.0.1:{port}",
                 "--status-address", f"127.0.0.1:{status}",
                 "--prefill-pods", ",".join(f"{s.host}:{s.port}" for s in self.prefill),
                 "--decode-pods", ",".join(f"{s.host}:{s.port}" for s in self.decode),
                 *router_args],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
        self.client = httpx.Client(base_url=self.url, timeout=30.0)
        if not wait_until(self._ready, START_TIMEOUT_S, 0.05):
            raise AssertionError("router not ready; log:\n" + self.log())

    def _ready(self) -> bool:
        if self.router.poll() is not None:
            raise AssertionError("router exited; log:\n" + self.log())
        try:
            return httpx.get(self.status_url + "/readyz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def log(self) -> str:
        return self.log_path.read_text()

    def metric(self, name: str, labels: Mapping[str, str] = {}, sim: Sim | None = None) -> float:
        page = sim.get("/metrics").text if sim else httpx.get(self.status_url + "/metrics").text
        return sample(page, name, labels)

    def stop(self) -> int | None:
        """Stop everything; the router's exit status (None when it never started)."""
        router = getattr(self, "router", None)
        if router is not None and router.poll() is None:
            router.terminate()
            try:
                router.wait(5)
            except subprocess.TimeoutExpired:
                router.kill()
                router.wait(5)
        if getattr(self, "client", None) is not None:
            self.client.close()
        for sim in self.prefill + self.decode:
            if sim.process.poll() is None:
                sim.stop()
        return router.returncode if router is not None else None


def prompt(words: int, seed: str = "") -> str:
    """A prompt of `words` words (the simulator's tokens), distinct per `seed`."""
    return " ".join(f"{seed}w{i}" for i in range(words))


LONG = prompt(30, "long")  # over --min-prefill-chars 40


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    started = Fleet(tmp_path_factory.mktemp("pd"))
    yield started
    assert started.stop() == 0, started.log()  # SIGTERM: a clean exit


@pytest.fixture(scope="module")
def client(fleet: Fleet) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=fleet.url + "/v1", api_key="none", max_retries=0) as sdk:
        yield sdk


def _straight(fleet: Fleet, path: str, body: dict[str, object]) -> dict[str, object]:
    """The same request sent to a decode engine directly (no router, no hand-off)."""
    answer = fleet.decode[0].post(path, body)
    assert answer.status_code == 200, answer.text
    value: dict[str, object] = answer.json()
    return value


def test_chat_is_prefilled_then_decoded(fleet: Fleet, client: openai.OpenAI) -> None:
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": LONG}]
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=messages, max_tokens=6, extra_headers={"X-Request-Id": "abc123"}
    )
    assert raw.headers["x-modelplane-prefill-pod"].startswith("default/prefill-")
    assert raw.headers["x-modelplane-pod"].startswith("default/decode-")
    answer = raw.parse()
    assert answer.id == "chatcmpl-abc123"
    expected = _straight(fleet, "/v1/chat/completions", {"messages": messages, "max_tokens": 6})
    assert answer.choices[0].message.content == expected["choices"][0]["message"]["content"]  # type: ignore[index]
    assert answer.usage is not None and answer.usage.completion_tokens == 6


def test_a_streamed_chat_is_prefilled_then_streamed_back(
    fleet: Fleet, client: openai.OpenAI
) -> None:
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": LONG + " streamed"}]
    with client.chat.completions.with_streaming_response.create(
        model=MODEL,
        messages=messages,
        max_tokens=5,
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        assert response.headers["x-modelplane-prefill-pod"].startswith("default/prefill-")
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    expected = _straight(fleet, "/v1/chat/completions", {"messages": messages, "max_tokens": 5})
    assert text == expected["choices"][0]["message"]["content"]  # type: ignore[index]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5


@pytest.mark.parametrize("stream", [False, True])
def test_completions_are_prefilled_then_decoded(
    fleet: Fleet, client: openai.OpenAI, stream: bool
) -> None:
    text = LONG + f" completion {stream}"
    expected = _straight(fleet, "/v1/completions", {"prompt": text, "max_tokens": 4})
    if stream:
        with client.completions.with_streaming_response.create(
            model=MODEL, prompt=text, max_tokens=4, stream=True
        ) as response:
            headers = response.headers
            got = "".join(c.choices[0].text for c in response.parse())
    else:
        raw = client.completions.with_raw_response.create(model=MODEL, prompt=text, max_tokens=4)
        headers = raw.headers
        got = raw.parse().choices[0].text
    assert headers["x-modelplane-prefill-pod"].startswith("default/prefill-")
    assert got == expected["choices"][0]["text"]  # type: ignore[index]


def test_messages_go_to_a_decode_pod_unchanged(fleet: Fleet) -> None:
    before = sum(fleet.metric("vllm:prompt_tokens_total", sim=s) for s in fleet.prefill)
    with anthropic.Anthropic(base_url=fleet.url, api_key="none", max_retries=0) as sdk:
        raw = sdk.messages.with_raw_response.create(
            model=MODEL, max_tokens=5, messages=[{"role": "user", "content": LONG}]
        )
    assert raw.headers["x-modelplane-pod"].startswith("default/decode-")
    assert "x-modelplane-prefill-pod" not in raw.headers
    assert raw.parse().usage.output_tokens == 5
    after = sum(fleet.metric("vllm:prompt_tokens_total", sim=s) for s in fleet.prefill)
    assert after == before


def test_other_paths_reach_a_decode_pod(fleet: Fleet) -> None:
    models = fleet.client.get("/v1/models")
    assert models.status_code == 200
    assert models.headers["x-modelplane-pod"].startswith("default/decode-")
    assert [m["id"] for m in models.json()["data"]] == [MODEL]
    assert "vllm:num_requests_waiting" in fleet.client.get("/metrics").text
    assert fleet.client.get("/no/such/path").status_code == 404


def test_a_short_prompt_skips_the_prefill(fleet: Fleet, client: openai.OpenAI) -> None:
    skipped = fleet.metric("modelplane_pd_router_prefill_skipped_total", {"reason": "short_prompt"})
    raw = client.completions.with_raw_response.create(model=MODEL, prompt="hi", max_tokens=2)
    assert "x-modelplane-prefill-pod" not in raw.headers
    assert raw.parse().choices[0].text
    after = fleet.metric("modelplane_pd_router_prefill_skipped_total", {"reason": "short_prompt"})
    assert after == skipped + 1


def test_bad_json_gets_the_engines_error(fleet: Fleet) -> None:
    answer = fleet.client.post("/v1/chat/completions", content=b"{not json")
    assert answer.status_code == 400
    assert "not valid JSON" in answer.json()["error"]["message"]


def test_a_request_a_prefill_pod_refuses_is_not_tried_on_another(
    fleet: Fleet, client: openai.OpenAI
) -> None:
    # An unknown model: every pod answers 404, so a second prefill would only cost a call;
    # the decode pod answers the client with the engine's own error.
    retried = fleet.metric("modelplane_pd_router_retries_total", {"phase": "prefill"})
    failed = fleet.metric(
        "modelplane_pd_router_prefill_skipped_total", {"reason": "prefill_failed"}
    )
    with pytest.raises(openai.NotFoundError) as raised:
        client.completions.create(model="no-such-model", prompt=LONG, max_tokens=2)
    assert "`no-such-model` does not exist" in raised.value.message
    assert raised.value.response.headers["x-modelplane-pod"].startswith("default/decode-")
    assert fleet.metric("modelplane_pd_router_retries_total", {"phase": "prefill"}) == retried
    after = fleet.metric("modelplane_pd_router_prefill_skipped_total", {"reason": "prefill_failed"})
    assert after == failed + 1


def test_a_large_body_is_read_as_a_small_one(fleet: Fleet, client: openai.OpenAI) -> None:
    # Over 64 KiB the router scans the body instead of parsing it: a prompt sharing its
    # leading blocks with a small body's still lands on that body's prefill pod.
    padding = prompt(2000, "x" * 30)  # 2,000 words of about 35 characters: about 70 KB
    for seed in ("one", "two", "three", "four"):  # each pair by chance alike: 1 in 2
        shared = prompt(200, seed)
        assert len(shared) > 4 * 256  # the key: its first 4 blocks of 256 characters
        pods = []
        for text in (f"{shared} small", f"{shared} {padding}"):
            raw = client.completions.with_raw_response.create(
                model=MODEL, prompt=text, max_tokens=1
            )
            pods.append(raw.headers["x-modelplane-prefill-pod"])
            assert raw.parse().choices[0].text
        assert len(json.dumps({"prompt": f"{shared} {padding}"})) > 64 * 1024
        assert pods[0] == pods[1], seed


def test_a_large_malformed_body_goes_to_decode_unchanged(fleet: Fleet) -> None:
    prefilled = sum(fleet.metric("vllm:prompt_tokens_total", sim=s) for s in fleet.prefill)
    body = json.dumps({"prompt": prompt(12_000, "bad")}).encode()[:-1] + b",}"
    assert len(body) > 64 * 1024
    answer = fleet.client.post("/v1/completions", content=body)
    assert answer.status_code == 400
    assert "not valid JSON" in answer.json()["error"]["message"]
    assert answer.headers["x-modelplane-pod"].startswith("default/decode-")
    after = sum(fleet.metric("vllm:prompt_tokens_total", sim=s) for s in fleet.prefill)
    assert after == prefilled


def test_a_body_over_the_cap_is_refused_before_any_pod(fleet: Fleet) -> None:
    answered = fleet.metric("modelplane_pd_router_requests_total")
    body = json.dumps({"model": "m", "prompt": "w " * (600 * 1024)}).encode()  # 1.2 MB
    answer = fleet.client.post("/v1/completions", content=body)
    assert answer.status_code == 413
    assert answer.text == "request body over 1048576 bytes\n"
    assert fleet.metric("modelplane_pd_router_requests_total") == answered


def test_shared_prefix_traffic_lands_on_one_prefill_pod(
    fleet: Fleet, client: openai.OpenAI
) -> None:
    shared = prompt(60, "shared")  # longer than 4 blocks of 256 characters
    pods: Counter[str] = Counter()
    for i in range(30):
        raw = client.completions.with_raw_response.create(
            model=MODEL, prompt=f"{shared} question {i}", max_tokens=1
        )
        pods[raw.headers["x-modelplane-prefill-pod"]] += 1
    assert pods.most_common(1)[0][1] >= 27, pods
    # The engine that took them found the shared prefix in its cache after the first.
    owner = fleet.prefill[int(pods.most_common(1)[0][0].removeprefix("default/prefill-"))]
    hits = fleet.metric("vllm:prefix_cache_hits_total", sim=owner)
    assert hits >= 26 * 48, hits  # 60 shared words: 3 complete blocks of 16


def test_a_client_that_disconnects_cancels_the_decode(fleet: Fleet) -> None:
    before = [fleet.metric("vllm:request_success_total", {"finished_reason": "abort"}, s)
              for s in fleet.decode]  # fmt: skip
    body = {"prompt": LONG + " long answer", "max_tokens": 3000, "ignore_eos": True,
            "stream": True}  # fmt: skip
    with (
        httpx.Client(base_url=fleet.url) as one,
        one.stream("POST", "/v1/completions", json=body) as response,
    ):
        assert response.status_code == 200
        next(response.iter_raw())  # the first chunk, then hang up

    def aborted() -> bool:
        now = [fleet.metric("vllm:request_success_total", {"finished_reason": "abort"}, s)
               for s in fleet.decode]  # fmt: skip
        return sum(now) == sum(before) + 1

    assert wait_until(aborted, 5.0), "the decode engine kept generating"


def test_blocks_the_decode_cannot_fetch_are_decoded_without(tmp_path: Path) -> None:
    # The prefill engine lets its blocks expire after a microsecond: every hand-off fails.
    fleet = Fleet(tmp_path, prefill=1, decode=1,
                  prefill_args=("--ttft-ms", "0", "--kv-lease-ms", "0.001"))  # fmt: skip
    try:
        body = {"prompt": LONG, "max_tokens": 3}
        answer = fleet.client.post("/v1/completions", json=body)
        assert answer.status_code == 200, answer.text
        assert "x-modelplane-prefill-pod" not in answer.headers
        expected = _straight(fleet, "/v1/completions", body)
        assert answer.json()["choices"][0]["text"] == expected["choices"][0]["text"]  # type: ignore[index]
        assert fleet.metric("modelplane_pd_router_retries_total", {"phase": "decode"}) == 1
        assert "decode refused the prefilled blocks" in fleet.log()
    finally:
        fleet.stop()


def test_a_client_that_disconnects_cancels_the_prefill(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path, prefill=1, decode=1, prefill_args=("--ttft-ms", "60000"))
    try:
        body = json.dumps({"prompt": LONG, "max_tokens": 2}).encode()
        head = f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"

        def prefilling() -> float:
            return fleet.metric("modelplane_pd_router_in_flight", {"phase": "prefill"})

        with socket.create_connection(("127.0.0.1", int(fleet.url.rsplit(":", 1)[1]))) as raw:
            raw.sendall(head.encode() + body)
            assert wait_until(lambda: prefilling() == 1, 5.0)
        # The engine would take a minute: only the router closing its request ends it.
        assert wait_until(lambda: prefilling() == 0, 5.0), fleet.log()
        assert fleet.metric("vllm:num_requests_running", sim=fleet.prefill[0]) == 0
    finally:
        fleet.stop()


def test_a_hot_prefix_spills_at_its_load_bound(tmp_path: Path) -> None:
    fleet = Fleet(
        tmp_path, prefill=2, decode=1,
        prefill_args=("--ttft-ms", "2000", "--tpot-ms", "0"),
        router_args=("--min-prefill-chars", "40", "--balance", "1.25"),
    )  # fmt: skip
    try:
        hot = prompt(80, "hot")

        def ask(i: int) -> str:
            body = {"prompt": f"{hot} {i}", "max_tokens": 1}
            answer = httpx.post(fleet.url + "/v1/completions", json=body, timeout=30)
            assert answer.status_code == 200, answer.text
            return answer.headers["x-modelplane-prefill-pod"]

        with ThreadPoolExecutor(12) as pool:
            pods = Counter(pool.map(ask, range(12)))
    finally:
        fleet.stop()
    # With all 12 in flight at once, a pod may hold at most ceil(1.25 * 12 / 2) = 8.
    assert len(pods) == 2 and max(pods.values()) <= 8, pods


def test_a_killed_prefill_pod_fails_no_request(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path, prefill=2, decode=2)
    try:
        victim = fleet.prefill[0]

        def ask(i: int) -> httpx.Response:
            if i == 10:
                victim.kill()
            body = {"prompt": prompt(20, f"k{i}"), "max_tokens": 2}
            return httpx.post(fleet.url + "/v1/completions", json=body, timeout=30)

        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(ask, range(40)))
        assert [a.status_code for a in answers] == [200] * 40
        survivor = "default/prefill-1"
        late = [a.headers.get("x-modelplane-prefill-pod") for a in answers[20:]]
        assert late == [survivor] * 20
        assert fleet.metric("modelplane_pd_router_retries_total", {"phase": "prefill"}) >= 1
    finally:
        fleet.stop()


def test_sigterm_drains_a_stream_in_flight_then_exits_cleanly(tmp_path: Path) -> None:
    # 40 tokens at 50 ms each: the stream is still running when SIGTERM comes.
    fleet = Fleet(tmp_path, prefill=1, decode=1,
                  decode_args=("--ttft-ms", "5", "--tpot-ms", "50"))  # fmt: skip
    try:
        port = int(fleet.url.rsplit(":", 1)[1])
        body = {"prompt": LONG + " drained", "max_tokens": 40, "ignore_eos": True,
                "stream": True}  # fmt: skip
        with (
            httpx.Client(base_url=fleet.url, timeout=30) as one,
            one.stream("POST", "/v1/completions", json=body) as response,
        ):
            assert response.status_code == 200
            assert response.headers["x-modelplane-prefill-pod"] == "default/prefill-0"
            events = response.iter_lines()
            first = next(e for e in events if e.startswith("data: "))
            fleet.router.terminate()

            def not_ready() -> bool:
                return httpx.get(fleet.status_url + "/readyz", timeout=1.0).status_code == 503

            assert wait_until(not_ready, 5.0), fleet.log()
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            rest = [e for e in events if e.startswith("data: ")]
        assert rest[-1] == "data: [DONE]"
        tokens = [json.loads(e[6:])["choices"][0]["text"] for e in [first, *rest[:-1]]]
        assert len(tokens) == 40  # every token, none cut
        assert fleet.router.wait(10) == 0, fleet.log()
        assert '"draining"' in fleet.log()
    finally:
        fleet.stop()


def test_workers_share_one_port_and_their_metrics_add_up(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path, prefill=1, decode=1,
                  router_args=("--min-prefill-chars", "40", "--workers", "2"))  # fmt: skip
    try:
        requests = 24
        for i in range(requests):  # a connection each: the kernel spreads them over workers
            with httpx.Client(base_url=fleet.url, timeout=30) as one:
                answer = one.post(
                    "/v1/completions", json={"prompt": f"{LONG} {i}", "max_tokens": 2}
                )
            assert answer.status_code == 200, answer.text
            assert answer.headers["x-modelplane-prefill-pod"] == "default/prefill-0"
        listening = [line for line in fleet.log().splitlines() if '"listening"' in line]
        assert len(listening) == 2 and len({json.loads(line)["port"] for line in listening}) == 1
        routed = fleet.metric("modelplane_pd_router_requests_total", {"route": "prefill_decode"})
        assert routed == requests  # both workers' counts, added up by the supervisor
        assert fleet.metric("modelplane_pd_router_pods", {"phase": "decode"}) == 1
        assert fleet.stop() == 0, fleet.log()  # SIGTERM: every worker drained, then exit 0
        assert fleet.log().count('"stopped"') == 3  # two workers and the supervisor
    finally:
        fleet.stop()


def test_the_load_path_sums_requests_running_on_every_decode_pod(tmp_path: Path) -> None:
    """Six long completions spread over two decode engines (5 ms a token, 2,000 tokens:
    about 10 s each): `/modelplane/load` says 6 running, while each engine itself says
    only its share; `/metrics` still reaches one engine."""
    fleet = Fleet(tmp_path, prefill=1, decode=2,
                  decode_args=("--ttft-ms", "5", "--tpot-ms", "5"))  # fmt: skip
    stop = threading.Event()
    streams = 6

    def one(i: int) -> None:
        body = {"prompt": f"{LONG} {i}", "max_tokens": 2000, "ignore_eos": True, "stream": True}
        with (
            httpx.Client(base_url=fleet.url, timeout=30) as own,
            own.stream("POST", "/v1/completions", json=body) as response,
        ):
            for _ in response.iter_raw():
                if stop.is_set():
                    return  # hang up: the router cancels the decode

    threads = [threading.Thread(target=one, args=(i,)) for i in range(streams)]
    try:
        for thread in threads:
            thread.start()
        running = "vllm:num_requests_running"
        each = [0.0, 0.0]

        def all_running() -> bool:
            each[:] = [fleet.metric(running, sim=s) for s in fleet.decode]
            return sum(each) == streams

        assert wait_until(all_running, 10.0), each
        assert all(n > 0 for n in each), each  # both engines carry some
        page = fleet.client.get("/modelplane/load")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert sample(page.text, running) == streams
        assert sample(page.text, "vllm:num_requests_waiting") == 0

        def engines_scraped() -> bool:  # then the engines' own figures are summed
            page = fleet.client.get("/modelplane/load").text
            by_engine = sample(page, "modelplane_pd_router_load_pods", {"figure": "engine"})
            return by_engine == 2 and sample(page, running) == streams

        time.sleep(1.5)  # a scrape (every second) after the six arrived
        assert wait_until(engines_scraped, 5.0), fleet.client.get("/modelplane/load").text
        assert sample(fleet.client.get("/metrics").text, running) in each  # one engine's
        refused = fleet.client.post("/modelplane/load", json={})
        assert (refused.status_code, refused.headers["allow"]) == (405, "GET, HEAD")
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
        fleet.stop()
