"""Building the fleet's binaries: cache entries, version stamps, the disk check, and a real etcd build."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import namedtuple
from pathlib import Path

import pytest
from modelplane_localfleet import binaries

Usage = namedtuple("Usage", "total used free")


def test_kubernetes_binaries_report_the_pinned_release() -> None:
    flags = binaries.KUBERNETES.ldflags.split()
    assert "-X" in flags
    assert "k8s.io/component-base/version.gitVersion=v1.36.3" in flags
    assert "k8s.io/client-go/pkg/version.gitVersion=v1.36.3" in flags
    assert "k8s.io/component-base/version.gitMinor=36" in flags


def test_each_family_has_its_own_wrapper_module_with_a_go_sum() -> None:
    for family in binaries.FAMILIES:
        assert (family.module_dir / "go.mod").is_file(), family.name
        assert (family.module_dir / "go.sum").is_file(), family.name
    assert len({f.module_dir for f in binaries.FAMILIES}) == len(binaries.FAMILIES)


def test_a_short_disk_fails_with_how_much_is_needed_and_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda _: Usage(100, 99, 1 << 30))
    with pytest.raises(binaries.DiskSpaceError) as failure:
        binaries.check_disk(tmp_path / "not" / "yet", 6 << 30)
    message = str(failure.value)
    assert "needs about 6.0 GiB free" in message
    assert "only 1.0 GiB is free" in message
    assert str(tmp_path) in message


def test_the_cache_folder_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MODELPLANE_CACHE", str(tmp_path))
    assert binaries.default_cache() == tmp_path
    assert binaries.ETCD.entry(tmp_path) == tmp_path / "localfleet" / "etcd-v3.6.16"


@pytest.mark.slow
def test_etcd_is_built_once_and_reports_its_version() -> None:
    if shutil.which("go") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Go is required in CI to build the local fleet's binaries")
        pytest.skip("Go is not installed")
    cache = Path(os.environ.get("MODELPLANE_CACHE") or binaries.default_cache())
    lines: list[str] = []
    entry = binaries.build(binaries.ETCD, cache, say=lines.append)
    assert binaries.ETCD.complete(cache)
    version = subprocess.run(
        [str(entry / "etcd"), "--version"], capture_output=True, text=True, check=True
    )
    assert "etcd Version: 3.6.16" in version.stdout
    again: list[str] = []
    assert binaries.build(binaries.ETCD, cache, say=again.append) == entry
    assert again == [], "a complete entry is not rebuilt"
