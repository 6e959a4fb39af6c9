"""The compiled fast path of validation agrees with the general walk on every object.

``Validator.validate`` tries the fast path first; ``validate_fully`` is the general
walk alone (defaults, structural check, CEL rules; the one that words errors).
On valid objects of every kind, the benchmark fleet's objects, every case of
``test_rules`` and thousands of variants (a field removed, set to null, to a
value of another type, out of range or of the wrong form, an unknown field,
a duplicated list item), both must give the same defaulted object (key order
included) and the same errors, and the input must come back untouched.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from typing import Any

from modelplane.api.validation import default_validator

from tests.api.builders import edited, valid
from tests.api.test_blockyaml import same
from tests.api.test_rules import ACCEPTED, REJECTED
from tools.bench import fleetgen

REPLACEMENTS: list[Any] = [
    None,
    "",
    "x",
    "Worker",
    "Leader",
    "EKS",
    "UPPER",
    "a" * 300,
    "-bad-",
    0,
    -1,
    7,
    10**12,
    1.5,
    True,
    [],
    {},
    ["x"],
    {"x": 1},
]


def _bases() -> Iterator[dict[str, Any]]:
    validator = default_validator()
    for kind in sorted(validator.kinds):
        yield valid(kind)
    for rejected in REJECTED:
        yield edited(valid(rejected.kind), *rejected.edits)
    for accepted in ACCEPTED:
        yield edited(valid(accepted.kind), *accepted.edits)
    yield from fleetgen.fleet(3, 6)
    yield fleetgen.deployment("gang", gang=True)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, sub in value.items():
            yield (*path, key)
            yield from _paths(sub, (*path, key))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            yield (*path, i)
            yield from _paths(sub, (*path, i))


def _variant(obj: dict[str, Any], path: tuple[Any, ...], rng: random.Random) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    parent: Any = out
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    roll = rng.randrange(5)
    if roll == 0 and isinstance(parent, dict):
        del parent[last]
    elif roll == 1 and isinstance(parent, dict):
        parent["unknownField"] = "x"
    elif roll == 2 and isinstance(parent, list):
        parent.append(copy.deepcopy(parent[last]))
    else:
        parent[last] = copy.deepcopy(rng.choice(REPLACEMENTS))
    return out


def _objects() -> list[dict[str, Any]]:
    rng = random.Random(11)
    out = []
    for base in _bases():
        out.append(base)
        out.extend(_variant(base, path, rng) for path in _paths(base))
    return out


def test_the_fast_path_and_the_general_walk_agree() -> None:
    validator = default_validator()
    fast_accepted = invalid = 0
    objects = _objects()
    for obj in objects:
        before = copy.deepcopy(obj)
        got, got_errors = validator.validate(obj)
        want, want_errors = validator.validate_fully(obj)
        assert same(obj, before), obj
        assert [str(e) for e in got_errors] == [str(e) for e in want_errors], obj
        assert same(got, want), obj
        fast_accepted += validator.accepted(obj) is not None
        invalid += bool(want_errors)
    # Not a vacuous pass: thousands of objects, many taken by the fast path, many invalid.
    assert len(objects) > 3000
    assert fast_accepted > 300
    assert invalid > 1500


def test_the_fast_path_takes_every_valid_base_object() -> None:
    validator = default_validator()
    for obj in _bases():
        if not validator.validate_fully(obj)[1]:
            assert validator.accepted(obj) is not None, obj
