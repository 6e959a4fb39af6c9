"""The fleet scheduler: a pure function from observed state to a placement.

Rules (the documentation's "How it schedules" page):
- clusters are filtered by the deployment's `clusterSelector` (and the cache's,
  both must match), pools by CEL device requests against their class;
- every member of one engine sits on one pool; a replica's engines share a cluster;
- capacity is counted on a ledger shared by every deployment, so no pool is
  overcommitted: in nodes (`pods x copies` per member that claims a DRA device)
  on a cluster in `Node` accounting, in devices per node, packed as the
  cluster's scheduler extension packs them, on one in `Device` accounting;
- taints: a cluster with a taint the deployment does not tolerate gets no new
  replica of it; a NoExecute taint also removes the replicas already there;
- retain, then fill: an existing replica stays while its cluster exists, has no
  untolerated NoExecute taint, and its pinned pools still match; it is charged
  what its current shape needs (not the cost recorded when it was placed), and
  one that has grown past what its pool has free is removed and placed again
  (delete, create); the shortfall is placed one replica at a time on the eligible
  Ready cluster hosting the fewest replicas of this deployment (ties by name);
  scale-down drops the highest index first; a replica never moves.

Same input, same output: no clock, no randomness, no I/O. Deployments are placed
in the order given, each consuming capacity the next one sees.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from modelplane.naming import replica_name
from modelplane.scheduling.ledger import Book, Ledger
from modelplane.scheduling.matching import EngineFit, Matcher, compile_deployment
from modelplane.scheduling.model import (
    Cluster,
    Deployment,
    Engine,
    EnginePin,
    Fleet,
    PlacedEngine,
    PlacedReplica,
    Placement,
    RemovedReplica,
    Replica,
    format_labels,
)
from modelplane.scheduling.packing import Demand
from modelplane.scheduling.taints import NO_EXECUTE, NO_SCHEDULE, first_untolerated


def schedule_all(deployments: Sequence[Deployment], fleet: Fleet) -> tuple[Placement, ...]:
    """Place each deployment in order against one shared ledger."""
    session = Session(fleet)
    session.settle(deployments)
    return tuple(session.place(deployment) for deployment in deployments)


def schedule(deployment: Deployment, fleet: Fleet) -> Placement:
    """Place one deployment against the fleet as observed."""
    return Session(fleet).place(deployment)


class Session:
    """One reconcile's worth of scheduling: a shared matcher cache and ledger."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.clusters = {cluster.name: cluster for cluster in fleet.clusters}
        self.cluster_order = sorted(self.clusters)
        self.class_names = sorted({name for c in fleet.clusters for name in c.class_names})
        self.matcher = Matcher(fleet.classes)
        self.ledger = Ledger(fleet)
        # Clusters alike in labels, taints, readiness and pools get the same static verdict
        # from every deployment: each kind is judged once per deployment, not each cluster.
        kinds: dict[object, int] = {}
        self.kind_of = {
            cluster.name: kinds.setdefault(
                (
                    cluster.label_set,
                    frozenset(cluster.taints),
                    cluster.ready,
                    cluster.not_ready_reason,
                    cluster.pools,
                ),
                len(kinds),
            )
            for cluster in fleet.clusters
        }
        self._plans: dict[Deployment, _Plan | str] = {}
        self._replicas: dict[tuple[str, str], list[Replica]] = {}
        for replica in fleet.replicas:
            self._replicas.setdefault((replica.namespace, replica.deployment), []).append(replica)

    def replicas_of(self, deployment: Deployment) -> list[Replica]:
        existing = self._replicas.get((deployment.namespace, deployment.name), [])
        return sorted(existing, key=lambda r: (r.index, r.name, r.cluster))

    def settle(self, deployments: Sequence[Deployment]) -> None:
        """Before placing `deployments` in turn: release every replica that will be dropped
        and lower every retained one that shrank, so that a replica that grew, placed
        earlier in the order, sees the nodes the later ones give back."""
        for deployment in deployments:
            plan = self._plan(deployment)
            if isinstance(plan, str):
                continue
            kept, removed = plan.retain(self.replicas_of(deployment))
            for gone in removed:
                self.ledger.release_replica(gone.replica)
            for replica, engines in kept:
                held = self.ledger.held(replica)
                lowered = {}
                for pool, demand in _per_pool(engines).items():
                    book = self.ledger.book(replica.cluster, pool)
                    before = held.get(pool, ())
                    lowered[pool] = book.lower(before, demand) if book else demand[: len(before)]
                self.ledger.hold(replica, lowered)

    def _plan(self, deployment: Deployment) -> _Plan | str:
        """The deployment's plan in this session, or its user error."""
        known = self._plans.get(deployment)
        if known is not None:
            return known
        error = compile_deployment(deployment)
        cache_selector: tuple[tuple[str, str], ...] = ()
        if error is None and deployment.cache_name is not None:
            cache = self.fleet.caches.get((deployment.namespace, deployment.cache_name))
            if cache is None:
                error = (
                    f'spec.modelCacheRef.name: ModelCache "{deployment.cache_name}" does not '
                    f'exist in namespace "{deployment.namespace}"'
                )
            else:
                cache_selector = cache.cluster_selector
        plan: _Plan | str = error if error is not None else _Plan(self, deployment, cache_selector)
        self._plans[deployment] = plan
        return plan

    def place(self, deployment: Deployment) -> Placement:
        plan = self._plan(deployment)
        if isinstance(plan, str):
            return self.hold(deployment.namespace, deployment.name, deployment.replicas, plan)
        return plan.run(self.replicas_of(deployment))

    def hold(self, namespace: str, name: str, desired: int, error: str) -> Placement:
        """A deployment with a user error: every placed replica stays as it is, nothing is added."""
        existing = self._replicas.get((namespace, name), [])
        existing = sorted(existing, key=lambda r: (r.index, r.name, r.cluster))
        kept = tuple(
            PlacedReplica(
                replica.index,
                replica.cluster,
                tuple(PlacedEngine(p.engine, p.pool, p.node_cost) for p in replica.engines),
                retained=True,
                why="kept as it was: the deployment has an error, so nothing is changed",
                name=replica.name or replica_name(name, replica.cluster, replica.index),
            )
            for replica in existing
        )
        return Placement(
            namespace, name, desired, kept, unscheduled=max(0, desired - len(kept)), error=error
        )


def _per_pool(engines: Sequence[PlacedEngine]) -> dict[str, Demand]:
    """The pods per pool of one replica's engines."""
    pods: dict[str, Demand] = {}
    for engine in engines:
        pods[engine.pool] = pods.get(engine.pool, ()) + engine.pods
    return pods


def _nodes_per_pool(engines: Sequence[EnginePin]) -> Counter[str]:
    """Nodes per pool of one replica's engines as recorded."""
    nodes: Counter[str] = Counter()
    for engine in engines:
        nodes[engine.pool] += engine.node_cost
    return nodes


def _placed(engine: Engine, pool: str, fit: EngineFit) -> PlacedEngine:
    return PlacedEngine(engine.name, pool, fit.node_cost, fit.members, fit.pods)


def _cost_change(replica: Replica, engines: tuple[PlacedEngine, ...]) -> str:
    """ "; engine "e" now needs 2 nodes (1 when placed)" for each engine whose cost changed."""
    before = {pin.engine: pin.node_cost for pin in replica.engines}
    return "".join(
        f'; engine "{e.engine}" now needs {e.node_cost} nodes ({before[e.engine]} when placed)'
        for e in engines
        if before.get(e.engine, e.node_cost) != e.node_cost
    )


@dataclass(frozen=True, slots=True)
class _Choice:
    engines: tuple[PlacedEngine, ...]
    detail: str


class _Plan:
    """Retain-then-fill for one deployment inside a session."""

    def __init__(
        self, session: Session, deployment: Deployment, cache_selector: tuple[tuple[str, str], ...]
    ) -> None:
        self.session = session
        self.deployment = deployment
        self.cache_selector = cache_selector
        # Each (engine, class) pair is judged once; lookups below are by class name.
        self.fits: list[dict[str, EngineFit]] = [
            {name: session.matcher.engine_fit(engine, name) for name in session.class_names}
            for engine in deployment.engines
        ]
        self.fitting_classes = [
            frozenset(name for name, fit in fits.items() if fit.ok) for fits in self.fits
        ]
        self.selector = frozenset(deployment.cluster_selector)
        self.cache_set = frozenset(cache_selector)
        self._static: dict[int, str | None] = {}

    # ------------------------------------------------------------------ retain

    def _retained_engines(self, replica: Replica) -> tuple[PlacedEngine, ...] | str:
        """The replica's engines re-resolved on their pinned pools, or why it cannot stay."""
        cluster = self.session.clusters.get(replica.cluster)
        if cluster is None:
            return f"cluster {replica.cluster} no longer exists"
        evicting = first_untolerated(cluster.taints, self.deployment.tolerations, (NO_EXECUTE,))
        if evicting is not None:
            return (
                f"cluster {cluster.name} has taint {evicting} that the deployment does not "
                "tolerate (spec.tolerations)"
            )
        pins = {pin.engine: pin for pin in replica.engines}
        pools = {pool.name: pool for pool in cluster.pools}
        engines: list[PlacedEngine] = []
        for engine, fits in zip(self.deployment.engines, self.fits, strict=True):
            pin = pins.get(engine.name)
            if pin is None:
                return f'engine "{engine.name}" is new and has no pool on this replica'
            pool = pools.get(pin.pool)
            if pool is None:
                return f"pool {pin.pool} no longer exists on cluster {cluster.name}"
            fit = fits[pool.class_name]
            if not fit.ok:
                return f'engine "{engine.name}" no longer fits pool {pool.name}: {fit.reason}'
            engines.append(_placed(engine, pool.name, fit))
        return tuple(engines)

    def _recharge(self, replica: Replica, engines: tuple[PlacedEngine, ...]) -> str | None:
        """Charge a retained replica what its current shape needs instead of what it was
        charged; None when that fits, else why it no longer does (then it charges nothing)."""
        ledger = self.session.ledger
        before = _nodes_per_pool(replica.engines)
        now = _per_pool(engines)
        held = ledger.held(replica)
        changed = sorted(p for p in {*now, *held} if now.get(p, ()) != held.get(p, ()))
        ledger.release_pools(replica, changed)  # unchanged pools stay where they were packed
        for name in changed:
            book = ledger.book(replica.cluster, name)
            was = held.get(name, ())
            grown = name in now and book is not None and book.grew(was, now[name])
            if grown and book is not None and not book.fits(now[name]):
                ledger.release_replica(replica)
                why = book.growth(before[name], now[name], was)
                return f"no longer fits pool {name} on {replica.cluster}: {why}"
        ledger.hold(replica, now)
        return None

    def retain(
        self, existing: list[Replica]
    ) -> tuple[list[tuple[Replica, tuple[PlacedEngine, ...]]], list[RemovedReplica]]:
        """Which existing replicas may stay (with their engines at today's cost), lowest index
        first, and which go: capacity aside, so the answer is the same before and after
        other deployments are placed."""
        deployment = self.deployment
        kept: list[tuple[Replica, tuple[PlacedEngine, ...]]] = []
        removed: list[RemovedReplica] = []
        seen_indices: set[int] = set()
        for replica in existing:
            outcome = self._retained_engines(replica)
            if replica.index in seen_indices:
                outcome = f"index {replica.index} is already taken by another replica"
            if isinstance(outcome, str):
                removed.append(RemovedReplica(replica, outcome))
            else:
                seen_indices.add(replica.index)
                kept.append((replica, outcome))
        # Scale down: drop the highest indices first.
        kept.sort(key=lambda item: item[0].index)
        while len(kept) > deployment.replicas:
            replica, _ = kept.pop()
            removed.append(RemovedReplica(replica, f"scaled down to {deployment.replicas}"))
        return kept, removed

    def run(self, existing: list[Replica]) -> Placement:
        deployment = self.deployment
        ledger = self.session.ledger
        kept, removed = self.retain(existing)
        for gone in removed:
            ledger.release_replica(gone.replica)
        # Then charge each kept replica its current shape, lowest index first.
        fitting: list[tuple[Replica, tuple[PlacedEngine, ...]]] = []
        for replica, engines in kept:
            grown = self._recharge(replica, engines)
            if grown is None:
                fitting.append((replica, engines))
            else:
                removed.append(RemovedReplica(replica, grown))
        kept = fitting

        placed = [
            PlacedReplica(
                replica.index,
                replica.cluster,
                engines,
                retained=True,
                why=f"kept on {replica.cluster}: the cluster exists and every engine's "
                "pinned pool still matches" + _cost_change(replica, engines),
                name=replica.name or replica_name(deployment.name, replica.cluster, replica.index),
            )
            for replica, engines in kept
        ]
        per_cluster = Counter(p.cluster for p in placed)
        taken = {p.index for p in placed}
        removed_slots = {(r.replica.cluster, r.replica.index) for r in removed}

        shortfall = deployment.replicas - len(placed)
        reasons: tuple[str, ...] = ()
        candidates = self._candidates() if shortfall > 0 else []
        while shortfall > 0:
            choice = self._fill_one(candidates, per_cluster)
            if choice is None:
                reasons = self._reasons()
                break
            cluster, engines_choice = choice
            index = 0
            while index in taken or (cluster, index) in removed_slots:
                index += 1
            taken.add(index)
            per_cluster[cluster] += 1
            for engine in engines_choice.engines:
                ledger.charge(cluster, engine.pool, engine.pods)
            placed.append(
                PlacedReplica(
                    index,
                    cluster,
                    engines_choice.engines,
                    retained=False,
                    why=engines_choice.detail,
                    name=replica_name(deployment.name, cluster, index),
                )
            )
            shortfall -= 1

        placed.sort(key=lambda p: p.index)
        return Placement(
            deployment.namespace,
            deployment.name,
            deployment.replicas,
            tuple(placed),
            removed=tuple(sorted(removed, key=lambda r: (r.replica.index, r.replica.cluster))),
            unscheduled=max(0, shortfall),
            reasons=reasons,
        )

    # -------------------------------------------------------------------- fill

    def _static_reason(self, cluster: Cluster) -> str | None:
        """Why a cluster can never take a new replica of this deployment, capacity aside."""
        kind = self.session.kind_of[cluster.name]
        if kind not in self._static:
            self._static[kind] = self._judge(cluster)
        return self._static[kind]

    def _judge(self, cluster: Cluster) -> str | None:
        deployment = self.deployment
        if not self.selector <= cluster.label_set:
            return (
                f"labels do not match clusterSelector {format_labels(deployment.cluster_selector)}"
            )
        if not self.cache_set <= cluster.label_set:
            return (
                f'outside the footprint of ModelCache "{deployment.cache_name}" '
                f"(clusterSelector {format_labels(self.cache_selector)})"
            )
        repelling = first_untolerated(
            cluster.taints, deployment.tolerations, (NO_SCHEDULE, NO_EXECUTE)
        )
        if repelling is not None:
            return f"has taint {repelling} that the deployment does not tolerate (spec.tolerations)"
        if not cluster.ready:
            return (
                f"not Ready ({cluster.not_ready_reason})"
                if cluster.not_ready_reason
                else "not Ready"
            )
        if not cluster.pools:
            return "has no node pools"
        for engine, fitting in zip(deployment.engines, self.fitting_classes, strict=True):
            if fitting.isdisjoint(cluster.class_names):
                return self._no_pool_reason(engine, cluster)
        return None

    def _no_pool_reason(self, engine: Engine, cluster: Cluster) -> str:
        why = {
            pool.name: self.session.matcher.engine_fit(engine, pool.class_name).reason
            for pool in cluster.pools
        }
        distinct = set(why.values())
        if len(distinct) == 1:
            detail = distinct.pop()
        else:
            detail = "; ".join(f"pool {name}: {reason}" for name, reason in why.items())
        return f'no pool satisfies engine "{engine.name}": {detail}'

    def _candidates(self) -> list[Cluster]:
        return [
            self.session.clusters[name]
            for name in self.session.cluster_order
            if self._static_reason(self.session.clusters[name]) is None
        ]

    def _fit_capacity(self, cluster: Cluster, explain: bool = True) -> _Choice | str:
        """Pools for each engine in order (no backtracking), or why capacity is short
        (worded only with `explain`)."""
        ledger = self.session.ledger
        pending: dict[str, Demand] = {}
        engines: list[PlacedEngine] = []
        details: list[str] = []
        for engine, fits in zip(self.deployment.engines, self.fits, strict=True):
            short: list[tuple[Book, Demand, Demand]] = []
            chosen: PlacedEngine | None = None
            for pool in cluster.pools:
                fit = fits[pool.class_name]
                book = ledger.book(cluster.name, pool.name)
                if not fit.ok or book is None:
                    continue
                before = pending.get(pool.name, ())
                if book.fits(before + fit.pods):
                    chosen = _placed(engine, pool.name, fit)
                    details.append(
                        f'engine "{engine.name}" on pool {pool.name} '
                        + book.taken(before, fit.pods)
                    )
                    pending[pool.name] = before + fit.pods
                    break
                short.append((book, before, fit.pods))
            if chosen is None:
                if not explain:
                    return ""
                return "; ".join(book.shortage(before, pods) for book, before, pods in short)
            engines.append(chosen)
        return _Choice(tuple(engines), "; ".join(details))

    def _fill_one(
        self, candidates: list[Cluster], per_cluster: Counter[str]
    ) -> tuple[str, _Choice] | None:
        # Candidates are in name order: try the least-loaded level first, then the next.
        for level in sorted({per_cluster[c.name] for c in candidates}):
            found = self._first_fit(candidates, per_cluster, level)
            if found is not None:
                return found
        return None

    def _first_fit(
        self, candidates: list[Cluster], per_cluster: Counter[str], level: int
    ) -> tuple[str, _Choice] | None:
        for cluster in candidates:
            if per_cluster[cluster.name] != level:
                continue
            choice = self._fit_capacity(cluster, explain=False)
            if isinstance(choice, _Choice):
                detail = (
                    f"placed on {cluster.name}: it hosted the fewest replicas of this deployment "
                    f"({per_cluster[cluster.name]}) among {len(candidates)} eligible clusters; "
                    f"{choice.detail}"
                )
                return cluster.name, _Choice(choice.engines, detail)
        return None

    def _reasons(self) -> tuple[str, ...]:
        reasons: list[str] = []
        if not self.session.cluster_order:
            return ("no InferenceCluster exists",)
        for name in self.session.cluster_order:
            cluster = self.session.clusters[name]
            static = self._static_reason(cluster)
            if static is not None:
                reasons.append(f"{name}: {static}")
                continue
            capacity = self._fit_capacity(cluster)
            if isinstance(capacity, str):
                reasons.append(f"{name}: {capacity}")
        return tuple(reasons)
