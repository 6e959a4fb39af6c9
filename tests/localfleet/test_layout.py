"""Fleet layout: stable indexes, disjoint addresses and pod ranges, a namespace named from the state path."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from modelplane_localfleet import layout
from modelplane_localfleet.layout import CONTROL, MAX_CLUSTERS, FleetLayout, Secret


def test_the_control_cluster_has_index_zero_and_inference_clusters_take_the_lowest_free_index(
    tmp_path: Path,
) -> None:
    fleet = layout.new_layout(tmp_path)
    east = fleet.add("east", Secret("east-kubeconfig"))
    west = fleet.add("west", None)
    assert (fleet.clusters[CONTROL].index, east.index, west.index) == (0, 1, 2)
    del fleet.clusters["east"]
    assert fleet.add("north", None).index == 1, "a freed index is reused"
    assert fleet.clusters["west"].index == 2, "neighbours never move"


def test_adding_a_known_cluster_keeps_its_index_and_updates_its_secret(tmp_path: Path) -> None:
    fleet = layout.new_layout(tmp_path)
    fleet.add("east", None)
    again = fleet.add("east", Secret("k", "config"))
    assert again.index == 1
    assert again.secret == Secret("k", "config")


def test_control_is_a_reserved_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="control cluster"):
        layout.new_layout(tmp_path).add(CONTROL, None)


def test_addresses_and_pod_ranges_are_disjoint_and_inside_the_routed_ranges(tmp_path: Path) -> None:
    fleet = layout.new_layout(tmp_path)
    plans = [fleet.clusters[CONTROL]] + [fleet.add(f"c{i}", None) for i in range(MAX_CLUSTERS - 1)]
    addresses = {p.address for p in plans}
    ranges = [ipaddress.ip_network(p.pod_cidr) for p in plans]
    assert len(addresses) == len(plans)
    assert all(ipaddress.ip_address(a) in layout.CLUSTER_RANGE for a in addresses)
    assert all(r.subnet_of(layout.POD_SUPERNET) for r in ranges)  # type: ignore[arg-type]
    assert not any(a.overlaps(b) for i, a in enumerate(ranges) for b in ranges[i + 1 :])
    with pytest.raises(ValueError, match="at most"):
        fleet.add("one-too-many", None)


def test_the_layout_round_trips_through_fleet_json(tmp_path: Path) -> None:
    fleet = layout.new_layout(tmp_path)
    fleet.add("east", Secret("east-kubeconfig", "kubeconfig"))
    fleet.add("west", None)
    layout.save(tmp_path, fleet)
    loaded = layout.load(tmp_path)
    assert loaded is not None
    assert loaded.namespace == fleet.namespace
    assert loaded.clusters == fleet.clusters


def test_a_state_file_of_another_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        FleetLayout.from_json('{"version": 99, "namespace": "x", "clusters": []}')


def test_the_namespace_name_depends_only_on_the_resolved_state_path(tmp_path: Path) -> None:
    name = layout.namespace_name(tmp_path)
    assert name == layout.namespace_name(tmp_path / "sub" / "..")
    assert name != layout.namespace_name(tmp_path / "other")
    assert name.startswith("mp-fleet-")
