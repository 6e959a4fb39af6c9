"""The hub double answers the real `huggingface_hub` client as the Hub does: model info with
file metadata, tree listings, downloads (whole and by range) with the Hub's headers,
branches resolving to content-derived commits, and gated repositories."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import (
    HfApi,
    get_hf_file_metadata,
    hf_hub_download,
    hf_hub_url,
    snapshot_download,
)
from huggingface_hub.errors import (
    GatedRepoError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import RepoFile, RepoFolder
from modelplane_hubsim import seed
from modelplane_hubsim.server import HubServer, Throttle

REPO = "acme/model"
GATED = "acme/gated"
TOKEN = "hf_right"
MIB = 1024 * 1024
FILES = {
    "config.json": b'{"model_type": "demo"}',
    "weights/model.safetensors": seed.safetensors_file(
        "w", 3 * MIB, __import__("random").Random(1)
    ),
    "README.md": b"# demo\n",
}


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    root = tmp_path / "hub"
    seed.write_revision(root, REPO, "main", FILES)
    seed.write_revision(root, GATED, "main", {"config.json": b"{}"})
    seed.configure(root, GATED, gated=True, tokens=(TOKEN,))
    server = HubServer(root)
    server.start()
    yield server
    server.shutdown()
    server.server_close()


def git_blob_id(data: bytes) -> str:
    """What `git hash-object` prints for a file with this content."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def test_model_info_lists_sizes_and_the_lfs_sha256(hub: HubServer) -> None:
    info = HfApi(endpoint=hub.endpoint, token=False).model_info(REPO, files_metadata=True)
    assert info.id == REPO
    assert info.sha is not None and len(info.sha) == 40
    siblings = {s.rfilename: s for s in info.siblings or []}
    assert set(siblings) == set(FILES)
    weights = siblings["weights/model.safetensors"]
    assert weights.size == len(FILES["weights/model.safetensors"])
    assert weights.lfs is not None
    assert weights.lfs.sha256 == hashlib.sha256(FILES["weights/model.safetensors"]).hexdigest()
    assert siblings["config.json"].lfs is None
    assert siblings["config.json"].blob_id == git_blob_id(FILES["config.json"])


def test_the_tree_lists_folders_and_files_recursively_or_not(hub: HubServer) -> None:
    api = HfApi(endpoint=hub.endpoint, token=False)
    top = {(type(e).__name__, e.path) for e in api.list_repo_tree(REPO)}
    assert top == {
        ("RepoFile", "README.md"),
        ("RepoFile", "config.json"),
        ("RepoFolder", "weights"),
    }
    everything = list(api.list_repo_tree(REPO, recursive=True))
    files = {e.path: e for e in everything if isinstance(e, RepoFile)}
    assert set(files) == set(FILES)
    assert [e.path for e in everything if isinstance(e, RepoFolder)] == ["weights"]
    inside = [e.path for e in api.list_repo_tree(REPO, path_in_repo="weights")]
    assert inside == ["weights/model.safetensors"]


def test_file_metadata_carries_the_commit_and_the_lfs_etag(hub: HubServer) -> None:
    commit = HfApi(endpoint=hub.endpoint, token=False).model_info(REPO).sha
    url = hf_hub_url(REPO, "weights/model.safetensors", endpoint=hub.endpoint)
    meta = get_hf_file_metadata(url, token=False)
    assert meta.commit_hash == commit
    assert meta.etag == hashlib.sha256(FILES["weights/model.safetensors"]).hexdigest()
    assert meta.size == len(FILES["weights/model.safetensors"])
    small = get_hf_file_metadata(
        hf_hub_url(REPO, "config.json", endpoint=hub.endpoint), token=False
    )
    assert small.etag == git_blob_id(FILES["config.json"])


def test_snapshot_download_and_hf_hub_download_fetch_the_files(
    hub: HubServer, tmp_path: Path
) -> None:
    folder = snapshot_download(REPO, endpoint=hub.endpoint, cache_dir=tmp_path / "hf", token=False)
    got = {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in Path(folder).rglob("*")
        if p.is_file()
    }
    assert got == FILES
    one = hf_hub_download(
        REPO, "config.json", endpoint=hub.endpoint, local_dir=tmp_path / "one", token=False
    )
    assert Path(one).read_bytes() == FILES["config.json"]


def test_a_range_request_gets_that_part(hub: HubServer) -> None:
    data = FILES["weights/model.safetensors"]
    url = hf_hub_url(REPO, "weights/model.safetensors", endpoint=hub.endpoint)
    part = httpx2.get(url, headers={"Range": "bytes=1000-"})
    assert (part.status_code, part.content) == (206, data[1000:])
    assert part.headers["Content-Range"] == f"bytes 1000-{len(data) - 1}/{len(data)}"
    middle = httpx2.get(url, headers={"Range": "bytes=10-19"})
    assert (middle.status_code, middle.content) == (206, data[10:20])
    beyond = httpx2.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416


def test_a_branch_resolves_to_the_commit_of_its_folder_and_moves_with_it(
    hub: HubServer, tmp_path: Path
) -> None:
    api = HfApi(endpoint=hub.endpoint, token=False)
    before = api.model_info(REPO, revision="main").sha
    seed.write_revision(hub.hub.root, REPO, "v2", {"config.json": b"{}"})
    seed.configure(hub.hub.root, REPO, branches={"main": "v2"})
    after = api.model_info(REPO, revision="main").sha
    assert after != before and after == api.model_info(REPO, revision="v2").sha
    # The old commit stays downloadable by its hash.
    old = hf_hub_download(REPO, "README.md", revision=before, endpoint=hub.endpoint,
                          local_dir=tmp_path / "old", token=False)  # fmt: skip
    assert Path(old).read_bytes() == FILES["README.md"]


def test_unknown_repositories_revisions_and_files_raise_the_clients_errors(hub: HubServer) -> None:
    api = HfApi(endpoint=hub.endpoint, token=False)
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("acme/none")
    with pytest.raises(RevisionNotFoundError):
        api.model_info(REPO, revision="v9")
    with pytest.raises(RemoteEntryNotFoundError):
        get_hf_file_metadata(hf_hub_url(REPO, "missing.txt", endpoint=hub.endpoint), token=False)


def test_a_gated_repository_needs_its_token(hub: HubServer, tmp_path: Path) -> None:
    with pytest.raises(GatedRepoError) as anonymous:
        HfApi(endpoint=hub.endpoint, token=False).model_info(GATED)
    assert anonymous.value.response.status_code == 401
    with pytest.raises(GatedRepoError) as wrong:
        hf_hub_download(GATED, "config.json", endpoint=hub.endpoint, token="hf_wrong",
                        local_dir=tmp_path / "wrong")  # fmt: skip
    assert wrong.value.response.status_code == 403
    got = snapshot_download(GATED, endpoint=hub.endpoint, token=TOKEN, local_dir=tmp_path / "ok")
    assert (Path(got) / "config.json").read_bytes() == b"{}"
    assert HfApi(endpoint=hub.endpoint, token=TOKEN).model_info(GATED).gated == "manual"


def test_the_command_serves_a_folder_to_hf_download(tmp_path: Path) -> None:
    root = tmp_path / "hub"
    seed.write_revision(root, REPO, "main", FILES)
    bin_dir = Path(sys.executable).parent
    hub = subprocess.Popen(
        [bin_dir / "modelplane-hubsim", "--root", root, "--port", "0"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert hub.stdout is not None
        lines = iter(hub.stdout.readline, "")
        listed = next(lines)
        assert listed.startswith(f"{REPO} "), listed  # one line per revision: repo, commit, ...
        endpoint = next(lines).split(" at ")[-1].strip()
        assert endpoint.startswith("http://127.0.0.1:"), endpoint
        done = subprocess.run(
            [bin_dir / "hf", "download", REPO, "--local-dir", tmp_path / "out"],
            env={"PATH": "/usr/bin:/bin", "HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "home")},
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        out = tmp_path / "out"
        got = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*")
               if p.is_file() and ".cache" not in p.parts}  # fmt: skip
        assert got == FILES
    finally:
        hub.terminate()
        hub.wait()


def test_stats_count_the_bytes_served_per_repository(hub: HubServer, tmp_path: Path) -> None:
    snapshot_download(REPO, endpoint=hub.endpoint, token=False, local_dir=tmp_path / "a")
    snapshot_download(GATED, endpoint=hub.endpoint, token=TOKEN, local_dir=tmp_path / "b")
    stats = httpx2.get(f"{hub.endpoint}/_hubsim/stats").json()
    assert stats["bytesByRepo"] == {REPO: sum(map(len, FILES.values())), GATED: 2}
    assert stats["bytesSent"] == sum(map(len, FILES.values())) + 2


def test_a_repository_throttle_paces_that_repository_only(
    hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`throttleMiBs` in `.hub.json` sends every byte of that repository's bodies through one
    shared pace at that rate; another repository's bytes are not paced."""
    paced: list[tuple[float, int]] = []
    monkeypatch.setattr(Throttle, "wait", lambda self, n: paced.append((self.rate, n)))
    seed.configure(hub.hub.root, REPO, throttle_mib_s=2.5)
    snapshot_download(REPO, endpoint=hub.endpoint, token=False, local_dir=tmp_path / "slow")
    snapshot_download(GATED, endpoint=hub.endpoint, token=TOKEN, local_dir=tmp_path / "fast")
    assert {rate for rate, _ in paced} == {2.5 * MIB}
    assert sum(n for _, n in paced) == sum(map(len, FILES.values()))
    assert (tmp_path / "slow" / "weights/model.safetensors").read_bytes() == FILES[
        "weights/model.safetensors"
    ]


def test_a_bad_throttle_names_the_file_and_the_field(hub: HubServer) -> None:
    (hub.hub.root / REPO / ".hub.json").write_text('{"throttleMiBs": -1}')
    answer = httpx2.get(hf_hub_url(REPO, "config.json", endpoint=hub.endpoint))
    assert answer.status_code == 500
    assert answer.headers["X-Error-Message"] == (
        f"{hub.hub.root / REPO / '.hub.json'}: throttleMiBs must be a number above 0, not -1"
    )
