"""How a ModelService's traffic is split over its endpoints: backendRef weights (pure).

`spec.endpoints[i].weight` (default 1) is entry i's share of the traffic,
relative to the other entries' weights; within an entry it is spread evenly over
the endpoints the entry matches that are routed. An endpoint matched by several
entries gets the sum of its shares; an entry with no routed endpoint gets
nothing, so its share goes to the others in proportion to theirs (never to a
503).

Endpoint e's exact share is sum over its entries i of weight_i / n_i (n_i: entry
i's routed endpoints). `endpoint_weights` turns those fractions into the integer
backendRef weights the Gateway API takes: multiplied by the least common multiple
of the n_i and divided by the weights' greatest common divisor, the ratios are
exact. Should that exceed the API's largest weight (1,000,000), the weights are
scaled to it and rounded (each at least 1): every ratio then stays within
1 / 1,000,000 of the whole.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

MAX_WEIGHT = 1_000_000
DEFAULT_WEIGHT = 1


def entry_weight(entry: Mapping[str, Any]) -> int:
    """An entry's `weight` (the CRD schema bounds it; absent means 1)."""
    return int(entry.get("weight", DEFAULT_WEIGHT))


def endpoint_weights(entries: Sequence[tuple[int, Sequence[str]]]) -> dict[str, int]:
    """Integer weights per endpoint name from (entry weight, the entry's routed endpoint
    names) per entry; endpoints of no entry are absent."""
    shares: dict[str, Fraction] = {}
    for weight, names in entries:
        members = sorted(set(names))
        for name in members:
            shares[name] = shares.get(name, Fraction(0)) + Fraction(weight, len(members))
    if not shares:
        return {}
    scale = math.lcm(*(s.denominator for s in shares.values()))
    exact = {name: int(share * scale) for name, share in shares.items()}
    divisor = math.gcd(*exact.values())
    exact = {name: value // divisor for name, value in exact.items()}
    top = max(exact.values())
    if top <= MAX_WEIGHT:
        return exact
    return {name: max(1, round(value * MAX_WEIGHT / top)) for name, value in exact.items()}
