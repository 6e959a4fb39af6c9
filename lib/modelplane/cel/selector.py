"""Compiling DRA device selectors and evaluating them against devices.

``compile_selector`` parses and type-checks once per distinct expression per
process (an LRU cache) and raises ``SelectorError`` with a one-line message.
``matches`` never raises: a runtime error (missing attribute, type mismatch,
overflow, an unparsable version or quantity published by the device) yields
``Verdict(False, reason)``, exactly where Kubernetes' allocator would treat
the device as not matching.  Results are memoized per (selector, device).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from modelplane.cel.compiler import Frame, Node, device_frame
from modelplane.cel.expression import compile_expression
from modelplane.cel.model import Device, Verdict
from modelplane.cel.values import DomainMap, EvalError, kind_name
from modelplane.quantity import Quantity
from modelplane.semver import SemVer

__all__ = ["Selector", "compile_selector", "matches"]


@dataclass(frozen=True, slots=True)
class Selector:
    """A compiled selector; equality and hashing are by expression only."""

    expression: str
    _node: Node = field(compare=False, hash=False, repr=False)


@lru_cache(maxsize=4096)
def compile_selector(expression: str) -> Selector:
    """Parse and check ``expression``; raise ``SelectorError`` if it is not a valid selector."""
    return Selector(expression, compile_expression(expression))


def _split_key(key: str, driver: str) -> tuple[str, str]:
    domain, sep, name = key.partition("/")
    return (domain, name) if sep else (driver, key)


@lru_cache(maxsize=16384)
def _frame(device: Device) -> Frame | str:
    """The evaluation frame for a device, or the error every selector gets on it."""
    attributes = DomainMap()
    for key, attribute in device.attributes:
        value: object = attribute.value
        if attribute.kind == "version":
            try:
                value = SemVer.parse(str(attribute.value))
            except ValueError as e:
                return f"attribute {key}: parse semantic version: {e}"
        domain, name = _split_key(key, device.driver)
        attributes.setdefault(domain, {})[name] = value
    capacity = DomainMap()
    for key, text in device.capacity:
        try:
            quantity = Quantity.parse(text)
        except ValueError as e:
            return f"capacity {key}: {e}"
        domain, name = _split_key(key, device.driver)
        capacity.setdefault(domain, {})[name] = quantity
    return device_frame(device.driver, attributes, capacity)


@lru_cache(maxsize=65536)
def _evaluate(selector: Selector, device: Device) -> Verdict:
    frame = _frame(device)
    if isinstance(frame, str):
        return Verdict(False, frame)
    try:
        result = selector._node.run(frame)
    except EvalError as e:
        return Verdict(False, str(e))
    except RecursionError:
        return Verdict(False, "evaluation nested too deeply")
    if type(result) is not bool:
        return Verdict(False, f"selector evaluated to {kind_name(result)}, not bool")
    return Verdict(result)


def matches(selector: Selector, device: Device) -> Verdict:
    """Evaluate ``selector`` on ``device``; never raises."""
    try:
        return _evaluate(selector, device)
    except Exception as e:  # defensive: a bug must not take down the scheduler
        return Verdict(False, f"internal error evaluating selector: {type(e).__name__}: {e}")
