"""A hub double on loopback with a few repositories, and the hydration job run against it."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cache_hydrator.hydrate import main
from modelplane_hubsim import seed
from modelplane_hubsim.server import HubServer

MODEL = "acme/tiny-model"
GATED = "acme/gated-model"
TOKEN = "hf_the_right_token"
MIB = 1024 * 1024


@dataclass
class Run:
    code: int
    status: dict[str, Any]


def cached_files(directory: Path) -> dict[str, bytes]:
    """The repository files in a cache folder (its own state folder left out)."""
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in directory.rglob("*")
        if p.is_file() and ".modelplane" not in p.relative_to(directory).parts
    }


def read_status(directory: Path) -> dict[str, Any]:
    status: dict[str, Any] = json.loads((directory / ".modelplane" / "status.json").read_text())
    return status


@dataclass
class Hub:
    """The hub double's server and folder, and the job run against it."""

    server: HubServer
    root: Path
    model: str = MODEL  # three 2 MiB shards and two small files
    gated: str = GATED  # answers only `token`
    token: str = TOKEN

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def files(self, repo: str, revision: str = "main") -> dict[str, bytes]:
        folder = self.root / repo / revision
        return {
            p.relative_to(folder).as_posix(): p.read_bytes()
            for p in folder.rglob("*")
            if p.is_file()
        }

    def hydrate(self, directory: Path, *args: str) -> Run:
        """Runs the job in this process: its exit status and status file."""
        argv = ["--endpoint", self.endpoint, "--dir", str(directory), "--interval", "0.5", *args]
        with pytest.raises(SystemExit) as exited:
            main(argv)
        return Run(int(exited.value.code or 0), read_status(directory))

    cached = staticmethod(cached_files)
    status = staticmethod(read_status)

    def command(self, directory: Path, *args: str) -> list[str]:
        """The job as a process of its own."""
        return [
            sys.executable, "-m", "cache_hydrator.hydrate",
            "--endpoint", self.endpoint, "--dir", str(directory), *args,
        ]  # fmt: skip


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    root = tmp_path / "hub"
    seed.write_revision(root, MODEL, "main", seed.synthetic_model(3, 2 * MIB, seed=1))
    seed.write_revision(root, GATED, "main", seed.synthetic_model(2, MIB, seed=2))
    seed.configure(root, GATED, gated=True, tokens=(TOKEN,))
    server = HubServer(root)
    server.start()
    yield Hub(server, root)
    server.shutdown()
    server.server_close()


@pytest.fixture
def large_model(hub: Hub) -> str:
    """A 64 MiB repository (four 16 MiB shards) on the same hub."""
    seed.write_revision(hub.root, "acme/large-model", "main", seed.synthetic_model(4, 16 * MIB))
    return "acme/large-model"
