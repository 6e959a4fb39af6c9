"""Cluster taints and deployment tolerations, with the Kubernetes taint model's matching rules.

A toleration tolerates a taint when its effect is empty or equal to the taint's, and
either its operator is Exists (with an empty key it tolerates every taint; with a key,
every taint of that key) or its operator is Equal and key and value are both equal.
NoSchedule keeps new replicas off a cluster; NoExecute also removes the replicas already
there. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Effect = Literal["NoSchedule", "NoExecute"]
Operator = Literal["Equal", "Exists"]
NO_SCHEDULE: Effect = "NoSchedule"
NO_EXECUTE: Effect = "NoExecute"


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    effect: Effect
    value: str = ""

    def __str__(self) -> str:
        """`key=value:Effect` (`key:Effect` without a value), as kubectl writes node taints."""
        value = f"={self.value}" if self.value else ""
        return f"{self.key}{value}:{self.effect}"


@dataclass(frozen=True, slots=True)
class Toleration:
    key: str = ""
    operator: Operator = "Equal"
    value: str = ""
    effect: Effect | None = None

    def tolerates(self, taint: Taint) -> bool:
        if self.effect is not None and self.effect != taint.effect:
            return False
        if self.operator == "Exists":
            return not self.key or self.key == taint.key
        return self.key == taint.key and self.value == taint.value


def first_untolerated(
    taints: Iterable[Taint], tolerations: Iterable[Toleration], effects: Iterable[Effect]
) -> Taint | None:
    """The first taint with one of `effects` that no toleration tolerates, or None."""
    wanted = frozenset(effects)
    held = tuple(tolerations)
    for taint in taints:
        if taint.effect in wanted and not any(t.tolerates(taint) for t in held):
            return taint
    return None
