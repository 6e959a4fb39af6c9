"""Runtime of the comprehension macros (``all``, ``exists``, ``exists_one``, ``map``, ``filter``).

Each builder returns the evaluation function of one macro call.  Error
semantics follow cel-go's expansion (``all``/``exists`` are commutative
over errors).  With ``tracked`` the functions also charge cel-go's cost of
the expanded loop to the frame's meter (``cost.METER``): the loop condition
per iteration (2 for ``all``, 3 for ``exists``), one read of the
accumulator per step (none on the untaken branch of a conditional step), the
list built per ``map``/``filter`` step, and one read of the result; the
limit is checked after every iteration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modelplane.cel.cost import COST_LIMIT, METER, CostLimitError, limit_exceeded
from modelplane.cel.values import EvalError, no_overload

__all__ = ["exists_one", "filter_map", "quantifier", "two_variable"]

Frame = dict[str, Any]
Eval = Callable[[Frame], Any]
Items = Callable[[Frame], list[Any]]


def _charge(frame: Frame, cost: int) -> None:
    meter = frame[METER]
    meter[0] += cost
    if meter[0] > COST_LIMIT:
        raise limit_exceeded()


def quantifier(items: Items, var: str, body: Eval, want: bool, tracked: bool) -> Eval:
    """``all`` (want False) or ``exists`` (want True)."""
    condition = 3 if want else 2

    def run(frame: Frame) -> bool:
        inner = dict(frame)
        error: EvalError | None = None
        values = items(frame)
        for i, item in enumerate(values):
            inner[var] = item
            if tracked:
                _charge(frame, condition + 1)
            try:
                value = body(inner)
            except CostLimitError:
                raise
            except EvalError as e:
                error = error or e
                continue
            if value is want:
                if tracked:
                    _charge(frame, (condition if i + 1 < len(values) else 0) + 1)
                return want
            if type(value) is not bool:
                error = error or no_overload("all" if not want else "exists", value)
        if tracked:
            _charge(frame, 1)
        if error is not None:
            raise error
        return not want

    return run


def exists_one(items: Items, var: str, body: Eval, tracked: bool) -> Eval:
    def run(frame: Frame) -> bool:
        inner = dict(frame)
        count = 0
        for item in items(frame):
            inner[var] = item
            value = body(inner)
            if type(value) is not bool:
                raise no_overload("exists_one", value)
            count += value
            if tracked and value:
                _charge(frame, 2)
        if tracked:
            _charge(frame, 2)
        return count == 1

    return run


def filter_map(
    items: Items, var: str, keep: Eval | None, transform: Eval | None, tracked: bool
) -> Eval:
    """``filter`` (``transform`` None), ``map`` (``keep`` None) or the three-argument ``map``."""
    # A kept step is `@result + [elem]`: the call, the accumulator, the list, and for
    # filter the read of the iteration variable.
    kept_cost = 12 if transform is not None else 13

    def run(frame: Frame) -> tuple[Any, ...]:
        inner = dict(frame)
        out: list[Any] = []
        for item in items(frame):
            inner[var] = item
            if keep is not None:
                verdict = keep(inner)
                if type(verdict) is not bool:
                    raise no_overload("filter", verdict)
                if not verdict:
                    continue
            out.append(transform(inner) if transform is not None else item)
            if tracked:
                _charge(frame, kept_cost)
        if tracked:
            _charge(frame, 1)
        return tuple(out)

    return run


def _pairs(value: Any) -> list[tuple[Any, Any]]:
    if isinstance(value, dict):
        return list(value.items())
    return list(enumerate(value))


def two_variable(
    kind: str, items: Items, names: tuple[str, str], bodies: list[Eval], tracked: bool
) -> Eval:
    """The two-variable macros: ``all``, ``exists``, ``existsOne``, ``transformList``,
    ``transformMap``, ``transformMapEntry`` (index or key, then value).

    Costs are charged like their one-variable counterparts.
    """
    first, second = names

    def run(frame: Frame) -> Any:
        inner = dict(frame)
        source = items(frame)
        pairs = _pairs(source if isinstance(source, dict) else tuple(source))
        if kind in ("all", "exists"):
            want = kind == "exists"
            error: EvalError | None = None
            for key, value in pairs:
                inner[first], inner[second] = key, value
                if tracked:
                    _charge(frame, (3 if want else 2) + 1)
                try:
                    verdict = bodies[0](inner)
                except CostLimitError:
                    raise
                except EvalError as e:
                    error = error or e
                    continue
                if verdict is want:
                    return want
                if type(verdict) is not bool:
                    error = error or no_overload(kind, verdict)
            if error is not None:
                raise error
            return not want
        if kind == "existsOne":
            count = 0
            for key, value in pairs:
                inner[first], inner[second] = key, value
                verdict = bodies[0](inner)
                if type(verdict) is not bool:
                    raise no_overload(kind, verdict)
                count += verdict
                if tracked and verdict:
                    _charge(frame, 2)
            return count == 1
        keep, transform = (bodies[0], bodies[1]) if len(bodies) == 2 else (None, bodies[0])
        out_list: list[Any] = []
        out_map: dict[Any, Any] = {}
        for key, value in pairs:
            inner[first], inner[second] = key, value
            if keep is not None:
                verdict = keep(inner)
                if type(verdict) is not bool:
                    raise no_overload(kind, verdict)
                if not verdict:
                    continue
            produced = transform(inner)
            if tracked:
                _charge(frame, 12)
            if kind == "transformList":
                out_list.append(produced)
            elif kind == "transformMap":
                out_map[key] = produced
            else:
                if not isinstance(produced, dict):
                    raise no_overload(kind, produced)
                for k, v in produced.items():
                    if k in out_map:
                        raise EvalError(f"insert failed: key {k} already exists")
                    out_map[k] = v
        return tuple(out_list) if kind == "transformList" else out_map

    return run
