"""A LeaderWorkerSet gang on loopback: leader 127.0.0.1, workers 127.0.0.2 and 127.0.0.3."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.enginesim.sim import Sim, free_port, wait_until


def _member(index: int, group_port: int) -> Sim:
    host = f"127.0.0.{index + 1}"
    return Sim(
        "--group-size", "3", "--worker-index", str(index), "--group-port", str(group_port),
        host=host,
        env={"MODELPLANE_POD_NAME": f"gang-0-{index}", "LWS_LEADER_ADDRESS": "127.0.0.1"},
    )  # fmt: skip


@pytest.fixture
def group_port() -> int:
    return free_port()


@pytest.fixture
def started() -> Iterator[list[Sim]]:
    sims: list[Sim] = []
    yield sims
    for sim in sims:
        sim.stop()


def _ready(sim: Sim) -> bool:
    return sim.get("/health").status_code == 200


def test_the_leader_is_ready_only_while_every_worker_is_joined(
    group_port: int, started: list[Sim]
) -> None:
    # A worker that starts first keeps retrying until the leader appears.
    worker1 = _member(1, group_port)
    started.append(worker1)
    worker1.wait_log("event=group_connect_failed")
    early = worker1.get("/health")
    assert early.status_code == 503
    assert "not joined to leader 127.0.0.1" in early.text
    assert "connection refused" in early.text

    leader = _member(0, group_port)
    started.append(leader)
    assert wait_until(lambda: worker1.get("/v1/group").json()["joined"])
    waiting = leader.get("/health")
    assert waiting.status_code == 503
    assert "1/2 joined (missing worker indexes 2)" in waiting.text
    refused = leader.post("/v1/completions", {"prompt": "hi"})
    assert refused.status_code == 503

    worker2 = _member(2, group_port)
    started.append(worker2)
    assert wait_until(lambda: _ready(leader))
    assert _ready(worker1) and _ready(worker2)
    view = leader.get("/v1/group").json()
    assert (view["role"], view["group_size"], view["worker_index"]) == ("leader", 3, 0)
    assert [(w["worker_index"], w["pod"], w["ip"]) for w in view["workers"]] == [
        (1, "gang-0-1", "127.0.0.2"),
        (2, "gang-0-2", "127.0.0.3"),
    ]
    for worker in (worker1, worker2):
        seen = worker.get("/v1/group").json()
        assert (seen["role"], seen["leader_ip"], seen["joined"]) == ("worker", "127.0.0.1", True)
        assert seen["leader_address"] == "127.0.0.1"
    assert leader.post("/v1/completions", {"prompt": "hi"}).status_code == 200
    leader.wait_log("event=group_join worker_index=2")

    # Inference on a worker names the leader; its metrics and health still answer.
    on_worker = worker2.post(
        "/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}]}
    )
    assert on_worker.status_code == 503
    assert "worker 2 of the group led by 127.0.0.1" in on_worker.json()["error"]["message"]
    assert worker2.get("/metrics").status_code == 200

    # A worker dies: the leader is unready until a replacement joins.
    worker2.kill()
    assert wait_until(lambda: leader.get("/health").status_code == 503)
    assert "missing worker indexes 2" in leader.get("/health").text
    leader.wait_log("event=group_leave worker_index=2")
    replacement = _member(2, group_port)
    started.append(replacement)
    assert wait_until(lambda: _ready(leader))


def test_a_worker_that_loses_its_leader_turns_unready_and_rejoins(
    group_port: int, started: list[Sim]
) -> None:
    leader = _member(0, group_port)
    worker1, worker2 = _member(1, group_port), _member(2, group_port)
    started += [worker1, worker2]
    assert wait_until(lambda: _ready(leader) and _ready(worker1))
    leader.kill()
    assert wait_until(lambda: worker1.get("/health").status_code == 503)
    worker1.wait_log("event=group_lost_leader")
    new_leader = _member(0, group_port)
    started.append(new_leader)
    assert wait_until(lambda: _ready(new_leader) and _ready(worker1) and _ready(worker2))


def test_a_worker_with_the_wrong_group_size_is_refused(group_port: int, started: list[Sim]) -> None:
    leader = _member(0, group_port)
    stranger = Sim(
        "--group-size", "4", "--worker-index", "3", "--group-port", str(group_port),
        "--leader-address", f"127.0.0.1:{group_port}", host="127.0.0.4",
    )  # fmt: skip
    started += [leader, stranger]
    line = stranger.wait_log("event=group_connect_failed")
    assert "leader refused" in line and "group size 4, leader has 3" in line
    assert leader.get("/v1/group").json()["workers"] == []
