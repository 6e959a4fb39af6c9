"""The simulator's settings: one frozen value built once by the command line (pure).

Guarantees: a `Settings` is consistent when built through `cli.parse_settings`
(group index inside the group, a worker knows its leader, positive limits);
nothing here reads the environment, the clock or the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

KvRole = Literal["none", "producer", "consumer", "both"]
GroupRole = Literal["standalone", "leader", "worker"]
KV_ROLES: tuple[KvRole, ...] = ("none", "producer", "consumer", "both")


@dataclass(frozen=True, slots=True)
class Identity:
    """The pod this engine pretends to run in."""

    namespace: str
    name: str
    ip: str

    @property
    def qualified(self) -> str:
        """`namespace/name`, the value of the `X-Modelplane-Pod` header."""
        return f"{self.namespace}/{self.name}"

    def as_json(self) -> dict[str, str]:
        return {"namespace": self.namespace, "name": self.name, "ip": self.ip}


@dataclass(frozen=True, slots=True)
class Settings:
    host: str
    port: int
    model: str
    served_model_names: tuple[str, ...]
    pod: Identity
    ttft_ms: float = 20.0
    tpot_ms: float = 5.0
    prefill_ms_per_token: float = 0.0
    """Added to the time to first token per prompt token not found in the prefix cache."""
    prefix_cache_blocks: int = 4096
    max_concurrency: int = 64
    max_model_len: int = 4096
    startup_delay_ms: float = 0.0
    kv_role: KvRole = "none"
    side_channel_host: str = ""
    side_channel_port: int = 5600
    engine_id: str = ""
    kv_lease_s: float = 120.0
    """How long a producer keeps a prefill's blocks for the consumer to fetch."""
    group_size: int = 1
    worker_index: int = 0
    leader_address: str | None = None
    group_port: int = 29500
    tls_cert: str | None = None
    """PEM certificate (chain) file: serve HTTPS instead of HTTP (with `tls_key`)."""
    tls_key: str | None = None
    served_names_given: bool = False
    """`--served-model-name` was given (else a model folder's config may name the model)."""
    load_rate_mib_s: float | None = None
    """Reading a model folder's files is capped at this rate (None: as fast as they read)."""

    @property
    def group_role(self) -> GroupRole:
        if self.group_size <= 1:
            return "standalone"
        return "leader" if self.worker_index == 0 else "worker"

    @property
    def produces_kv(self) -> bool:
        """Serves remote-decode (prefill) requests and the side channel."""
        return self.kv_role in ("producer", "both")

    @property
    def consumes_kv(self) -> bool:
        """Serves remote-prefill (decode) requests by fetching blocks from a producer."""
        return self.kv_role in ("consumer", "both")
