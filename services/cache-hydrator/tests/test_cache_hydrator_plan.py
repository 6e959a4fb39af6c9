"""`plan.decide`: what a run keeps, resumes, removes and refuses, from the listing and the disk."""

from __future__ import annotations

import pytest
from cache_hydrator.plan import (
    GIB,
    Fetch,
    HydrationError,
    Listing,
    OnDisk,
    Plan,
    RemoteFile,
    decide,
)

CONFIG = RemoteFile("config.json", 100, "b" * 40, None)
SHARD = RemoteFile("model.safetensors", 3 * GIB, "c" * 40, "d" * 64)
LISTING = Listing("acme/model", "e" * 40, (CONFIG, SHARD))
ROOMY = 10 * GIB


def test_an_empty_volume_fetches_everything_from_the_start() -> None:
    assert decide(LISTING, OnDisk({}, {}, ROOMY), size_gib=4) == Plan(
        keep=(), fetch=(Fetch(CONFIG, 0), Fetch(SHARD, 0)), remove=(), drop_partial=()
    )


def test_verified_files_are_kept_and_partial_ones_resumed() -> None:
    disk = OnDisk({"config.json": ("b" * 40, 100)}, {"model.safetensors": GIB}, ROOMY)
    plan = decide(LISTING, disk, size_gib=4)
    assert plan == Plan(keep=(CONFIG,), fetch=(Fetch(SHARD, GIB),), remove=(), drop_partial=())
    assert plan.bytes_on_disk == 100 + GIB


def test_the_lfs_sha256_is_what_a_large_file_is_checked_against() -> None:
    assert SHARD.checksum == "d" * 64
    assert CONFIG.checksum == "b" * 40


def test_files_of_another_listing_are_removed_and_changed_ones_fetched_again() -> None:
    disk = OnDisk(
        {"config.json": ("0" * 40, 100), "old.bin": ("f" * 64, 5)},
        {"gone.bin": 7, "model.safetensors": 4 * GIB},  # longer than the file: not resumable
        ROOMY,
    )
    assert decide(LISTING, disk, size_gib=None) == Plan(
        keep=(),
        fetch=(Fetch(CONFIG, 0), Fetch(SHARD, 0)),
        remove=("config.json", "old.bin"),
        drop_partial=("gone.bin", "model.safetensors"),
    )


def test_a_size_below_the_repository_is_refused_naming_the_field() -> None:
    with pytest.raises(HydrationError) as refused:
        decide(LISTING, OnDisk({}, {}, ROOMY), size_gib=3)
    assert str(refused.value) == (
        f"spec.huggingFace.sizeGiB: 3 GiB is below the size of acme/model at {'e' * 40} "
        "(3.00 GiB in 2 files)"
    )
    assert refused.value.field == "spec.huggingFace.sizeGiB"


def test_a_volume_without_room_for_the_rest_is_refused() -> None:
    disk = OnDisk({}, {"model.safetensors": 2 * GIB}, free_bytes=GIB)
    with pytest.raises(
        HydrationError, match=r"the volume is full: 1.00 GiB free, 1.00 GiB of acme/model"
    ):
        decide(LISTING, disk, size_gib=4)


def test_space_freed_by_removed_files_counts_as_room() -> None:
    disk = OnDisk({"old.bin": ("f" * 64, 3 * GIB)}, {}, free_bytes=GIB)
    assert decide(LISTING, disk, size_gib=4).remove == ("old.bin",)
