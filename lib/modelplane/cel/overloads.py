"""Function signatures of the selector environment and runtime overload dispatch.

An ``Overload`` is one static signature (used by the checker, as cel-go's
declarations are) with an optional implementation of its own; a
``Function`` groups the overloads of one name with a default
implementation.  ``merge`` joins the declarations that several libraries
make of one name (``indexOf`` is a string and a list function).
``dispatch`` returns the callable to run for the overloads the checker kept:
one implementation directly, several behind a check of the runtime kinds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from modelplane.cel.types import Type
from modelplane.cel.values import kind_name, no_overload

__all__ = ["Function", "Impl", "Overload", "ResultOf", "dispatch", "fits", "merge"]

Impl = Callable[..., Any]
ResultOf = Callable[[Sequence[Type]], Type]


@dataclass(frozen=True, slots=True)
class Overload:
    params: tuple[Type, ...]
    result: Type
    member: bool = False
    impl: Impl | None = None
    result_of: ResultOf | None = None  # the result type as a function of the argument types
    check: Callable[[Sequence[Type]], bool] | None = None  # type-parameter constraints

    def result_type(self, args: Sequence[Type]) -> Type:
        return self.result if self.result_of is None else self.result_of(args)


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    overloads: tuple[Overload, ...]
    impl: Impl


def fits(param: Type, value: object) -> bool:
    """Whether a runtime value may be passed where ``param`` is declared."""
    return param.unknown or kind_name(value) == param.name


def merge(functions: Iterable[Function]) -> dict[str, Function]:
    """One ``Function`` per name; each overload keeps its own implementation."""
    merged: dict[str, Function] = {}
    for function in functions:
        own = tuple(
            o if o.impl is not None else _with_impl(o, function.impl) for o in function.overloads
        )
        known = merged.get(function.name)
        if known is None:
            merged[function.name] = Function(function.name, own, function.impl)
        else:
            merged[function.name] = Function(function.name, known.overloads + own, known.impl)
    return merged


def _with_impl(overload: Overload, impl: Impl) -> Overload:
    return Overload(
        overload.params, overload.result, overload.member, impl, overload.result_of, overload.check
    )


def dispatch(name: str, candidates: Sequence[Overload]) -> Impl:
    """The implementation to call for the overloads that matched statically."""
    impls: list[Impl] = []
    for o in candidates:
        assert o.impl is not None
        if o.impl not in impls:
            impls.append(o.impl)
    if len(impls) == 1:
        return impls[0]
    options = [(o.params, o.impl) for o in candidates]

    def run(*args: Any) -> Any:
        for params, impl in options:
            if all(fits(p, a) for p, a in zip(params, args, strict=True)):
                assert impl is not None
                return impl(*args)
        raise no_overload(name, *args)

    return run
