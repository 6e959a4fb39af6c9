"""What the local fleet builds: each component, its wrapper module, binaries, checks and manifests.

A component is built from one wrapper Go module under `tools/localfleet/go/`
(so version selection in one never drags another) into one cache entry
`<name>-<version>/`. Its binaries are checked by running them (`--version`
must name the pinned release) before the entry counts as complete, and the
manifests it needs at run time (CRDs, webhook configurations) are copied out of
the Go module cache next to them. Kubernetes and LWS binaries carry version
stamps through `-ldflags -X`, as their release builds do. KEDA is built from a
trimmed copy of its source (`trim`): only the scalers of `KEDA_TRIGGERS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelplane_localfleet import versions
from modelplane_localfleet.trim import SourceTrim

GO_DIR = Path(__file__).resolve().parents[1] / "go"
GIB = 1 << 30


@dataclass(frozen=True, slots=True)
class Check:
    """Running the binary with `args` exits 0 and prints `expect` (stdout or stderr)."""

    args: tuple[str, ...]
    expect: str


@dataclass(frozen=True, slots=True)
class Binary:
    """One executable: its file name in the entry and the Go main package it is built from."""

    name: str
    package: str
    checks: tuple[Check, ...]


@dataclass(frozen=True, slots=True)
class Manifests:
    """YAML shipped in the upstream module (`source`: a folder or a file), copied to `target`."""

    source: str
    target: str


@dataclass(frozen=True, slots=True)
class DiskNeeds:
    """Bytes a cold build adds to the cache entry, Go's module cache and Go's build cache."""

    entry: int
    modules: int
    build_cache: int


@dataclass(frozen=True, slots=True)
class Component:
    """Binaries and manifests of one `upstream` Go module, built through one wrapper module."""

    name: str
    version: str
    upstream: str
    wrapper: str
    disk: DiskNeeds
    binaries: tuple[Binary, ...] = ()
    manifests: tuple[Manifests, ...] = ()
    ldflags: str = "-s -w"
    tags: str = ""
    trim: SourceTrim | None = None  # build from a trimmed copy of the upstream source
    go_dir: Path = GO_DIR
    # Not part of the build recipe (excluded from the cache key):
    carries_replaces: bool = False  # copy upstream's `replace X => X vN` lines into the wrapper
    fleet_needs: bool = True  # `up` builds it; False: built on first use (`build`, tests)

    @property
    def module_dir(self) -> Path:
        return self.go_dir / self.wrapper

    def entry(self, cache: Path) -> Path:
        return cache / "localfleet" / f"{self.name}-{self.version}"


def kubernetes_ldflags(version: str) -> str:
    """Stamps `version` where `--version`, `/version` and kubectl's client version read it."""
    major, minor = version.removeprefix("v").split(".")[:2]
    stamps = []
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        stamps += [
            f"-X {package}.gitVersion={version}",
            f"-X {package}.gitMajor={major}",
            f"-X {package}.gitMinor={minor}",
            f"-X {package}.gitTreeState=clean",
        ]
    return " ".join(["-s", "-w", *stamps])


def _kubernetes_binary(name: str) -> Binary:
    check = (
        Check(("version", "--client"), f"Client Version: {versions.KUBERNETES}")
        if name == "kubectl"
        else Check(("--version",), f"Kubernetes {versions.KUBERNETES}")
    )
    return Binary(name, f"k8s.io/kubernetes/cmd/{name}", (check,))


KUBERNETES = Component(
    name="kubernetes",
    version=versions.KUBERNETES,
    upstream="k8s.io/kubernetes",
    wrapper="k8s",
    binaries=tuple(
        _kubernetes_binary(name)
        for name in (
            "kube-apiserver",
            "kube-scheduler",
            "kube-controller-manager",
            "kube-proxy",
            "kubectl",
        )
    ),
    ldflags=kubernetes_ldflags(versions.KUBERNETES),
    tags="selinux,notest",
    disk=DiskNeeds(entry=GIB // 2, modules=3 * GIB // 2, build_cache=5 * GIB),
)
ETCD = Component(
    name="etcd",
    version=versions.ETCD,
    upstream="go.etcd.io/etcd/server/v3",
    wrapper="etcd",
    binaries=(
        Binary(
            "etcd",
            "go.etcd.io/etcd/server/v3",
            (Check(("--version",), f"etcd Version: {versions.ETCD.removeprefix('v')}"),),
        ),
    ),
    disk=DiskNeeds(entry=GIB // 8, modules=GIB // 4, build_cache=GIB // 2),
)
LWS = Component(
    name="lws",
    version=versions.LWS,
    upstream="sigs.k8s.io/lws",
    wrapper="lws",
    binaries=(
        Binary(
            "lws-manager",
            "sigs.k8s.io/lws/cmd",
            (
                Check(("--version",), f"Version: {versions.LWS}"),
                Check(("--help",), "-config"),
            ),
        ),
    ),
    manifests=(
        Manifests("config/crd/bases", "crds"),
        Manifests("config/webhook", "webhook"),
        Manifests("config/rbac/role.yaml", "rbac"),
    ),
    ldflags=f"-s -w -X sigs.k8s.io/lws/pkg/version.GitVersion={versions.LWS}",
    disk=DiskNeeds(entry=GIB // 8, modules=GIB // 2, build_cache=GIB),
)
GATEWAY_API = Component(
    name="gateway-api",
    version=versions.GATEWAY_API,
    upstream="sigs.k8s.io/gateway-api",
    wrapper="gateway-api",
    manifests=(Manifests("config/crd/standard", "crds"),),
    disk=DiskNeeds(entry=GIB // 64, modules=GIB // 16, build_cache=0),
)

CRANE = Component(
    name="crane",
    version=versions.CRANE,
    upstream="github.com/google/go-containerregistry",
    wrapper="crane",
    binaries=(
        Binary(
            "crane",
            "github.com/google/go-containerregistry/cmd/crane",
            (Check(("version",), versions.CRANE.removeprefix("v")),),
        ),
    ),
    ldflags=(
        "-s -w -X github.com/google/go-containerregistry/cmd/crane/cmd.Version="
        + versions.CRANE.removeprefix("v")
    ),
    disk=DiskNeeds(entry=GIB // 16, modules=GIB // 4, build_cache=GIB // 2),
)
HELM = Component(
    name="helm",
    version=versions.HELM,
    upstream="helm.sh/helm/v3",
    wrapper="helm",
    binaries=(Binary("helm", "helm.sh/helm/v3/cmd/helm", (Check(("version",), versions.HELM),)),),
    # As helm's Makefile does: the Kubernetes version `helm template` and `helm lint` assume
    # (without it: v1.20) is the minor of the client-go it is built with (0.36 -> 1.36).
    ldflags=" ".join(
        [
            "-s -w",
            f"-X helm.sh/helm/v3/internal/version.version={versions.HELM}",
            *(
                f"-X helm.sh/helm/v3/pkg/{package}.k8sVersion{part}={value}"
                for package in ("chartutil", "lint/rules")
                for part, value in (("Major", "1"), ("Minor", "36"))
            ),
        ]
    ),
    disk=DiskNeeds(entry=GIB // 8, modules=GIB // 2, build_cache=GIB),
)
SKAFFOLD = Component(
    name="skaffold",
    version=versions.SKAFFOLD,
    upstream="github.com/GoogleContainerTools/skaffold/v2",
    wrapper="skaffold",
    binaries=(
        Binary(
            "skaffold",
            "github.com/GoogleContainerTools/skaffold/v2/cmd/skaffold",
            (Check(("version",), versions.SKAFFOLD),),
        ),
    ),
    ldflags=(
        "-s -w -X github.com/GoogleContainerTools/skaffold/v2/pkg/skaffold/version.version="
        + versions.SKAFFOLD
    ),
    carries_replaces=True,
    fleet_needs=False,
    disk=DiskNeeds(entry=GIB // 4, modules=GIB, build_cache=2 * GIB),
)
KEDA_MODULE = "github.com/kedacore/keda/v2"
# The triggers the local fleet's KEDA knows: endpoint-manager's scaler (`external-push`,
# `external`), `metrics-api` (e2e/test_keda.py), and the ones that need no client library
# (`cpu`, `memory`, `cron`, `kubernetes-workload`). Any other trigger type is refused with
# KEDA's own "no scaler found for type" error. Upstream's switch lists about 80.
KEDA_TRIGGERS = (
    ("cpu", "return scalers.NewCPUMemoryScaler(corev1.ResourceCPU, config)"),
    ("memory", "return scalers.NewCPUMemoryScaler(corev1.ResourceMemory, config)"),
    ("cron", "return scalers.NewCronScaler(config)"),
    ("external", "return scalers.NewExternalScaler(config)"),
    ("external-push", "return scalers.NewExternalPushScaler(config)"),
    ("kubernetes-workload", "return scalers.NewKubernetesWorkloadScaler(client, config)"),
    ("metrics-api", "return scalers.NewMetricsAPIScaler(config, client)"),
)
KEDA_TRIM = SourceTrim(
    folder="pkg/scalers",
    suffix="_scaler.go",
    keep=(
        "cpu_memory_scaler.go",
        "cron_scaler.go",
        "external_scaler.go",
        "kubernetes_workload_scaler.go",
        "metrics_api_scaler.go",
    ),
    switch_file="pkg/scaling/scalers_builder.go",
    # v2.21.0's file; another version's must be reviewed before the trim applies to it
    switch_sha256="9925746eedee22ea55977cecbcaa5b15e0ccd4bb699345263525ae006ecdfcdc",
    start="\t// TRIGGERS-START",
    end="\t// TRIGGERS-END",
    cases=KEDA_TRIGGERS,
    unknown='return nil, fmt.Errorf("no scaler found for type: %s", triggerType)',
    add=(
        (
            "pkg/scalers/trimmed_declarations.go",
            "package scalers\n\n"
            "// Declared upstream in azure_queue_scaler.go, which the trim deletes.\n"
            'const externalMetricType = "External"\n',
        ),
    ),
)
KEDA = Component(
    name="keda",
    version=versions.KEDA,
    upstream=KEDA_MODULE,
    wrapper="keda",
    # KEDA's binaries have no version flag; `--help` proves each runs and is the right one.
    binaries=tuple(
        Binary(name, f"{KEDA_MODULE}/cmd/{name}", (Check(("--help",), flag),))
        for name, flag in (
            ("operator", "--metrics-service-bind-address"),
            ("adapter", "--metrics-service-address"),
            ("webhooks", "--cache-miss-to-direct-client"),
        )
    ),
    manifests=(
        Manifests("config/crd/bases", "crds"),
        Manifests("config/rbac", "rbac"),
        Manifests("config/metrics-server", "metrics-server"),
        Manifests("config/webhooks", "admission"),  # not "webhooks": a binary has that name
    ),
    ldflags=f"-s -w -X {KEDA_MODULE}/version.Version={versions.KEDA}",
    trim=KEDA_TRIM,
    carries_replaces=True,
    fleet_needs=False,
    # trimmed: measured 193 MiB entry, 1.0 GiB modules, 1.7 GiB build cache (untrimmed 3.2)
    disk=DiskNeeds(entry=GIB // 4, modules=3 * GIB // 2, build_cache=5 * GIB // 2),
)
COMPONENTS = (KUBERNETES, ETCD, LWS, GATEWAY_API, CRANE, HELM, SKAFFOLD, KEDA)
