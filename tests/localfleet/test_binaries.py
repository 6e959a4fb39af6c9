"""Building the fleet's components: cache entries and keys, version checks, the disk check, a real etcd build."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path
from types import SimpleNamespace

import pytest
from modelplane_localfleet import binaries
from modelplane_localfleet.components import (
    COMPONENTS,
    ETCD,
    GIB,
    KUBERNETES,
    LWS,
    Check,
    Component,
    DiskNeeds,
)

Usage = namedtuple("Usage", "total used free")


def _component(go_dir: Path) -> Component:
    """A small component whose wrapper module lives under `go_dir`."""
    (go_dir / "etcd").mkdir(parents=True)
    (go_dir / "etcd" / "go.mod").write_text("module example.local/etcd\n")
    (go_dir / "etcd" / "go.sum").write_text("")
    return dataclasses.replace(ETCD, go_dir=go_dir)


def test_kubernetes_binaries_are_stamped_with_the_pinned_release() -> None:
    flags = KUBERNETES.ldflags.split()
    for stamp in (
        "k8s.io/component-base/version.gitVersion=v1.36.3",
        "k8s.io/component-base/version.gitMajor=1",
        "k8s.io/component-base/version.gitMinor=36",
        "k8s.io/client-go/pkg/version.gitVersion=v1.36.3",
    ):
        assert stamp in flags
    assert flags[:2] == ["-s", "-w"]


def test_every_binary_is_checked_against_its_pinned_version() -> None:
    checks = {b.name: b.checks for c in COMPONENTS for b in c.binaries}
    assert checks == {
        "kube-apiserver": (Check(("--version",), "Kubernetes v1.36.3"),),
        "kube-scheduler": (Check(("--version",), "Kubernetes v1.36.3"),),
        "kube-controller-manager": (Check(("--version",), "Kubernetes v1.36.3"),),
        "kube-proxy": (Check(("--version",), "Kubernetes v1.36.3"),),
        "kubectl": (Check(("version", "--client"), "Client Version: v1.36.3"),),
        "etcd": (Check(("--version",), "etcd Version: 3.6.16"),),
        "lws-manager": (
            Check(("--version",), "Version: v0.9.0"),
            Check(("--help",), "-config"),
        ),
        "crane": (Check(("version",), "0.22.1"),),
        "helm": (Check(("version",), "v3.21.4"),),
        "skaffold": (Check(("version",), "v2.16.1"),),
        # KEDA's binaries have no version flag: their help names a flag of their own
        "operator": (Check(("--help",), "--metrics-service-bind-address"),),
        "adapter": (Check(("--help",), "--metrics-service-address"),),
        "webhooks": (Check(("--help",), "--cache-miss-to-direct-client"),),
    }


def test_each_component_has_its_own_wrapper_module_with_a_go_sum() -> None:
    for component in COMPONENTS:
        assert (component.module_dir / "go.mod").is_file(), component.name
        assert (component.module_dir / "go.sum").is_file(), component.name
    assert len({c.module_dir for c in COMPONENTS}) == len(COMPONENTS)


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        pytest.param({"MODELPLANE_CACHE": "/c/mp"}, "/c/mp", id="MODELPLANE_CACHE wins"),
        pytest.param({"XDG_CACHE_HOME": "/c/xdg"}, "/c/xdg/modelplane", id="then XDG_CACHE_HOME"),
        pytest.param({"HOME": "/home/u"}, "/home/u/.cache/modelplane", id="then the home folder"),
    ],
)
def test_the_cache_folder_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], expected: str
) -> None:
    for name in ("MODELPLANE_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert binaries.default_cache() == Path(expected)


def test_an_entry_is_named_by_component_and_version(tmp_path: Path) -> None:
    assert [c.entry(tmp_path).name for c in COMPONENTS] == [
        "kubernetes-v1.36.3",
        "etcd-v3.6.16",
        "lws-v0.9.0",
        "gateway-api-v1.6.3",
        "crane-v0.22.1",
        "helm-v3.21.4",
        "skaffold-v2.16.1",
        "keda-v2.21.0",
    ]
    assert ETCD.entry(tmp_path).parent == tmp_path / "localfleet"


def test_the_cache_key_changes_with_the_wrapper_and_the_recipe(tmp_path: Path) -> None:
    component = _component(tmp_path / "go")
    key = binaries.fingerprint(component)
    assert binaries.fingerprint(component) == key
    assert binaries.fingerprint(dataclasses.replace(component, disk=DiskNeeds(1, 2, 3))) == key
    assert binaries.fingerprint(dataclasses.replace(component, ldflags="-s")) != key
    (component.module_dir / "go.sum").write_text("example.com/m v1.0.0 h1:x=\n")
    assert binaries.fingerprint(component) != key


def test_an_entry_is_complete_only_with_a_marker_of_the_current_key(tmp_path: Path) -> None:
    component = _component(tmp_path / "go")
    cache = tmp_path / "cache"
    entry = component.entry(cache)
    entry.mkdir(parents=True)
    (entry / "etcd").write_text("half written")
    assert not binaries.complete(component, cache), "no marker: an interrupted build"
    (entry / binaries.MARKER).write_text(json.dumps({"fingerprint": "0" * 16}))
    assert not binaries.complete(component, cache), "a marker of another recipe"
    (entry / binaries.MARKER).write_text(
        json.dumps({"fingerprint": binaries.fingerprint(component)})
    )
    assert binaries.complete(component, cache)


def test_a_complete_entry_is_returned_without_running_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    component = _component(tmp_path / "go")
    entry = component.entry(tmp_path)
    entry.mkdir(parents=True)
    (entry / binaries.MARKER).write_text(
        json.dumps({"fingerprint": binaries.fingerprint(component)})
    )

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("ran a command for a complete entry")

    monkeypatch.setattr(subprocess, "run", refuse)
    said: list[str] = []
    assert binaries.build(component, tmp_path, say=said.append) == entry
    assert said == []


def test_a_short_disk_fails_with_how_much_is_needed_how_much_is_free_and_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda _: Usage(100, 99, GIB))
    needs = [
        binaries.Need("cache entry", tmp_path / "cache" / "localfleet", GIB // 2),
        binaries.Need("Go build cache", tmp_path / "go-build", 5 * GIB),
    ]
    with pytest.raises(binaries.DiskSpaceError) as failure:
        binaries.check_disk(needs, "kubernetes v1.36.3")
    assert str(failure.value) == (
        f"not enough free disk for a cold build of kubernetes v1.36.3: the file system of "
        f"{tmp_path} needs about 5.5 GiB (cache entry 0.5 GiB in {tmp_path}/cache/localfleet, "
        f"Go build cache 5.0 GiB in {tmp_path}/go-build) and only 1.0 GiB is free. Free some "
        "space, or point MODELPLANE_CACHE, GOMODCACHE and GOCACHE at a larger disk."
    )


def test_enough_disk_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda _: Usage(100, 0, 8 * GIB))
    binaries.check_disk([binaries.Need("Go build cache", tmp_path / "x", 7 * GIB)], "etcd")


def test_several_binaries_are_built_by_one_go_build_into_the_folder(tmp_path: Path) -> None:
    command = binaries.build_command(KUBERNETES, tmp_path)
    assert command[:5] == ["go", "build", "-trimpath", "-tags", "selinux,notest"]
    assert command[command.index("-o") :] == [
        "-o",
        f"{tmp_path}/",
        "k8s.io/kubernetes/cmd/kube-apiserver",
        "k8s.io/kubernetes/cmd/kube-scheduler",
        "k8s.io/kubernetes/cmd/kube-controller-manager",
        "k8s.io/kubernetes/cmd/kube-proxy",
        "k8s.io/kubernetes/cmd/kubectl",
    ]


def test_a_single_binary_is_built_under_its_own_name(tmp_path: Path) -> None:
    command = binaries.build_command(LWS, tmp_path)
    assert command[-3:] == ["-o", str(tmp_path / "lws-manager"), "sigs.k8s.io/lws/cmd"]
    assert "sigs.k8s.io/lws/pkg/version.GitVersion=v0.9.0" in command[command.index("-ldflags") + 1]


@pytest.mark.parametrize(
    ("script", "error"),
    [
        pytest.param("echo 'Kubernetes v1.36.3'", None, id="the expected version passes"),
        pytest.param(
            "echo 'Kubernetes v0.0.0-master'", "without printing", id="another version fails"
        ),
        pytest.param(
            "echo 'Kubernetes v1.36.3' >&2; exit 1", "exited 1", id="a failing exit fails"
        ),
    ],
)
def test_a_binary_must_print_its_version(tmp_path: Path, script: str, error: str | None) -> None:
    path = tmp_path / "kube-apiserver"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    check = Check(("--version",), "Kubernetes v1.36.3")
    if error is None:
        binaries.run_check(path, check)
    else:
        with pytest.raises(binaries.BuildError, match=error):
            binaries.run_check(path, check)


@pytest.mark.slow
@pytest.mark.usefixtures("needs_go")
def test_etcd_is_built_once_and_reports_its_version() -> None:
    cache = binaries.default_cache()
    entry = binaries.build(ETCD, cache, say=lambda _: None)
    assert binaries.complete(ETCD, cache)
    version = subprocess.run(
        [str(entry / "etcd"), "--version"], capture_output=True, text=True, check=True
    )
    assert "etcd Version: 3.6.16" in version.stdout
    again: list[str] = []
    assert binaries.build(ETCD, cache, say=again.append) == entry
    assert again == [], "a complete entry is not rebuilt"


def test_up_builds_what_the_fleet_runs_and_keda_only_when_asked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from modelplane_localfleet import fleet

    built: list[str] = []
    monkeypatch.setattr(
        binaries, "build", lambda component, cache, say: built.append(component.name)
    )
    monkeypatch.setattr(
        fleet,
        "locate_binaries",
        lambda cache: SimpleNamespace(traefik=Path("/")),
    )
    fleet.ensure_binaries(tmp_path, print)
    assert built == ["kubernetes", "etcd", "lws", "gateway-api", "crane", "helm"]
    built.clear()
    fleet.ensure_binaries(tmp_path, print, with_keda=True)
    assert built == ["kubernetes", "etcd", "lws", "gateway-api", "crane", "helm", "keda"]


def test_a_carried_replace_flag_does_not_change_the_cache_key(tmp_path: Path) -> None:
    component = _component(tmp_path / "go")
    flipped = dataclasses.replace(component, carries_replaces=True, fleet_needs=False)
    assert binaries.fingerprint(flipped) == binaries.fingerprint(component)


def test_a_long_build_says_what_it_is_compiling_until_it_ends() -> None:
    said: list[str] = []
    with binaries.Progress(said.append, "kubernetes v1.36.3: build", every=0.01) as progress:
        progress.saw("k8s.io/apiserver/pkg/server")
        for _ in range(500):
            if said:
                break
            time.sleep(0.01)
    assert said, "nothing was said while the build ran"
    assert said[0].startswith("kubernetes v1.36.3: build: still running after ")
    assert said[-1].endswith("1 packages so far, now k8s.io/apiserver/pkg/server")
    count = len(said)
    time.sleep(0.05)
    assert len(said) == count, "progress went on after the build ended"


def test_a_failed_go_build_reports_the_compiler_error_not_the_package_list(
    tmp_path: Path,
) -> None:
    (tmp_path / "go.mod").write_text("module example.local/broken\n\ngo 1.26.0\n")
    (tmp_path / "main.go").write_text("package main\n\nfunc main() { undefinedName() }\n")
    seen: list[str] = []
    progress = SimpleNamespace(saw=seen.append)
    with pytest.raises(binaries.BuildError) as failure:
        binaries._run(["go", "build", "-v", "."], tmp_path, "building broken", progress)  # type: ignore[arg-type]
    assert "undefined: undefinedName" in str(failure.value)
    assert "building broken failed" in str(failure.value)
    assert "example.local/broken\n" in [line + "\n" for line in seen]


def test_helm_assumes_the_kubernetes_minor_of_the_client_go_it_is_built_with() -> None:
    from modelplane_localfleet.components import HELM
    from modelplane_localfleet.gomod import required_version

    client_go = required_version((HELM.module_dir / "go.mod").read_text(), "k8s.io/client-go")
    assert client_go is not None
    minor = client_go.removeprefix("v0.").split(".")[0]
    assert f"helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor={minor}" in HELM.ldflags
    assert f"helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor={minor}" in HELM.ldflags


def test_a_long_build_says_how_many_of_its_packages_are_compiled() -> None:
    said: list[str] = []
    with binaries.Progress(said.append, "keda v2.21.0: build", every=0.01, total=1974) as progress:
        progress.saw("github.com/kedacore/keda/v2/pkg/scalers")
        for _ in range(500):
            if said:
                break
            time.sleep(0.01)
    assert said[-1].endswith(
        "1 of 1974 packages so far, now github.com/kedacore/keda/v2/pkg/scalers"
    )


@pytest.mark.usefixtures("needs_go")
def test_the_package_count_lists_what_the_build_command_imports() -> None:
    command = binaries.build_command(ETCD, Path("/nowhere"))
    count = binaries._package_count(command, ETCD.module_dir)
    listed = subprocess.run(
        ["go", "list", "-deps", "-trimpath", "go.etcd.io/etcd/server/v3"],
        cwd=ETCD.module_dir,
        env={**os.environ, "GOWORK": "off", "CGO_ENABLED": "0"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert count == len(listed.stdout.split()) > 100


@pytest.mark.usefixtures("needs_go")
def test_build_output_reaches_a_pipe_line_by_line(tmp_path: Path) -> None:
    """A CI log is a pipe: each line must be written when said, not at exit (here: never,
    the process ends without flushing)."""
    code = (
        "import os\nfrom modelplane_localfleet import cli\n"
        f"cli.run(['build', '--component', 'gateway-api', '--cache', {str(tmp_path)!r}])\n"
        "os._exit(0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert "gateway-api v1.6.3: built at " in result.stdout
