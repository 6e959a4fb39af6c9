"""Kubernetes' rules for an image's process: command, env, user; references and pull policy."""

from __future__ import annotations

from pathlib import Path

import pytest
from modelplane_localfleet.nodeagent import rootfs
from modelplane_localfleet.nodeagent.images import Image, ImageConfig, Reference, pull_policy
from modelplane_localfleet.nodeagent.rootfs import environment


def image(tmp_path: Path, **config: object) -> Image:
    etc = tmp_path / "etc"
    etc.mkdir(exist_ok=True)
    (etc / "passwd").write_text("root:x:0:0::/root:/bin/sh\nweb:x:101:102::/srv:/bin/sh\n")
    (etc / "group").write_text("root:x:0:\nweb:x:102:\nshared:x:500:web,other\nstaff:x:50:\n")
    ref = Reference("10.240.0.1:5000", "team/web", "v1", None)
    return Image(ref, "sha256:" + "0" * 64, tmp_path, ImageConfig(**config), 0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("container", "expected"),
    [
        ({}, ["/entry", "default-arg"]),
        ({"args": ["--x=$(MODE)"]}, ["/entry", "--x=fast"]),
        ({"command": ["/other"]}, ["/other"]),
        ({"command": ["/other", "$(MODE)"], "args": ["$$(MODE)"]}, ["/other", "fast", "$(MODE)"]),
    ],
    ids=["image entrypoint and cmd", "args replace cmd", "command drops cmd", "expansion"],
)
def test_command_follows_kubernetes_rules(
    tmp_path: Path, container: dict[str, object], expected: list[str]
) -> None:
    found = image(tmp_path, entrypoint=("/entry",), cmd=("default-arg",))
    assert rootfs.command(container, found, {"MODE": "fast"}) == expected


def test_env_is_the_images_overridden_by_the_containers(tmp_path: Path) -> None:
    found = image(tmp_path, env=("PATH=/opt/bin", "A=image", "B=image=with=equals"))
    agent = {"HOSTNAME": "web-0", "PATH": "/usr/bin", "A": "pod"}
    assert environment(found, {"env": [{"name": "A"}]}, agent) == {
        "PATH": "/opt/bin",
        "HOSTNAME": "web-0",
        "A": "pod",
        "B": "image=with=equals",
    }
    assert environment(image(tmp_path), {}, agent)["PATH"] == rootfs.DEFAULT_PATH
    own = {"env": [{"name": "PATH", "value": "/usr/bin"}]}
    assert environment(found, own, agent)["PATH"] == "/usr/bin"


@pytest.mark.parametrize(
    ("user", "pod_context", "context", "expected"),
    [
        ("", {}, {}, (0, 0, [0])),
        ("web", {}, {}, (101, 102, [102, 500])),
        ("web:staff", {}, {}, (101, 50, [50, 500])),
        ("4000:4001", {}, {}, (4000, 4001, [4001])),
        ("web", {"runAsUser": 7, "supplementalGroups": [9]}, {"runAsGroup": 8}, (7, 8, [8, 9])),
        ("web", {"runAsUser": 7}, {"runAsUser": 101}, (101, 102, [102, 500])),
        ("4000:4001", {"fsGroup": 65532}, {}, (4000, 4001, [4001, 65532])),
    ],
    ids=[
        "root",
        "name",
        "name:group",
        "numbers",
        "runAs overrides",
        "container over pod",
        "fsGroup joins the groups",
    ],
)
def test_the_user_comes_from_the_security_context_else_the_image(
    tmp_path: Path,
    user: str,
    pod_context: dict[str, object],
    context: dict[str, object],
    expected: tuple[int, int, list[int]],
) -> None:
    pod = {"spec": {"securityContext": pod_context}}
    found = image(tmp_path, user=user)
    assert rootfs.identity(pod, {"securityContext": context}, found) == expected


def test_an_unknown_user_name_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(rootfs.ConfigError, match="'nobody' is not in its /etc/passwd"):
        rootfs.identity({"spec": {}}, {}, image(tmp_path, user="nobody"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.240.0.1:5000/team/web:v1", Reference("10.240.0.1:5000", "team/web", "v1", None)),
        ("registry.modelplane.local:5000/web", Reference("registry.modelplane.local:5000", "web", None, None)),
        ("localhost/a/b@sha256:ab", Reference("localhost", "a/b", None, "sha256:ab")),
        ("vllm/vllm-openai:v0.9.0", None),
        ("nginx", None),
    ],
)  # fmt: skip
def test_references_name_their_registry(text: str, expected: Reference | None) -> None:
    assert Reference.parse(text) == expected


@pytest.mark.parametrize(
    ("container", "expected"),
    [
        ({"image": "10.240.0.1:5000/web"}, "Always"),
        ({"image": "10.240.0.1:5000/web:latest"}, "Always"),
        ({"image": "10.240.0.1:5000/web:v1"}, "IfNotPresent"),
        ({"image": "10.240.0.1:5000/web@sha256:ab"}, "IfNotPresent"),
        ({"image": "10.240.0.1:5000/web", "imagePullPolicy": "Never"}, "Never"),
    ],
)
def test_pull_policy_defaults_as_the_api_server_does(
    container: dict[str, object], expected: str
) -> None:
    assert pull_policy(container) == expected


@pytest.mark.parametrize(
    ("pod", "expected"),
    [
        (
            {"metadata": {"name": "fleet-scheduler-7f9c-x2x"}, "spec": {}},
            "fleet-scheduler-7f9c-x2x",
        ),
        ({"metadata": {"name": "web-0"}, "spec": {"hostname": "leader"}}, "leader"),
        ({"metadata": {"name": "a" * 62 + "-b"}, "spec": {}}, "a" * 62),
    ],
    ids=["the pod's name", "spec.hostname", "cut to 63 without a trailing dash"],
)
def test_the_container_is_named_like_its_pod(pod: dict[str, object], expected: str) -> None:
    assert rootfs.pod_hostname(pod) == expected
