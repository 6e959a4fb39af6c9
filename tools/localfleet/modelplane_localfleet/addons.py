"""What a cluster runs besides its Kubernetes control plane.

Every cluster: the Gateway API standard CRDs, the `traefik` GatewayClass and a
Traefik process (on the control cluster it stands in for the gateway the
InferenceGateway installs in production), the endpoints of `default/kubernetes`
(`servicenet`) and the node agent (kubelet, runtime and DRA driver stand-in)
for the pools `write_node_agent_config` describes. The control cluster also gets
Modelplane's CRDs, each service's identity and RBAC (`services`), kube-proxy and
its system pool (`SYSTEM_POOL`: CPU nodes for the control plane's pods).
Inference clusters also get a system node (`INFERENCE_SYSTEM_POOL`: CPU, no
devices, for the prefill/decode routers), the serving stack's Gateway, the
LeaderWorkerSet CRDs, its controller and its webhooks, registered by URL with
the cluster CA's bundle, and the RWX StorageClass `modelplane-rwx` with the
harness's provisioner (`provisioner`, volumes under `storage/<cluster>/`).
Each process acts as its own client-certificate user bound by RBAC to what it
needs.

The functions here are the hooks `cluster.Cluster` calls in order:
`users` and `write_files` (once per start), `install` (after the apiserver is
ready; server-side apply, so repeating it is harmless), `components` (the
processes) and `after_ready` (waits that need those processes). The control
cluster's processes include the fleet's image registry (`registry`) and, when
`up --hub-root` asked for it, the model hub (`hub`).
"""

from __future__ import annotations

import datetime
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from modelplane_localfleet import extension, gateway, keda, lws, provisioner, servicenet, services
from modelplane_localfleet.hub import hub_component
from modelplane_localfleet.layout import PORTS, ClusterPlan
from modelplane_localfleet.nodeagent import rbac as node_agent_rbac
from modelplane_localfleet.nodeagent.config import AgentConfig, PoolHardware
from modelplane_localfleet.provisioning import storage_class
from modelplane_localfleet.registry import registry_component, storage_dir

if TYPE_CHECKING:
    from modelplane_localfleet.cluster import Cluster, ComponentSpec

TRAEFIK_USER = "modelplane:traefik"
LWS_USER = "modelplane:lws-controller-manager"
# The control cluster's CPU nodes, where the control plane's pods run.
SYSTEM_POOL = PoolHardware("system", "system", 2, (), cpu="16", memory="64Gi", system=True)
# Each inference cluster's CPU node, where platform pods that need no device run (the
# prefill/decode routers): `modelplane.ai/system=true`, no pool label, so no pool counts it.
INFERENCE_SYSTEM_POOL = PoolHardware("system", "system", 1, (), cpu="8", memory="32Gi", system=True)


def users(plan: ClusterPlan) -> dict[str, str]:
    """Client-certificate users by component, for the kubeconfigs `Cluster` writes."""
    out = {"traefik": TRAEFIK_USER, "node-agent": node_agent_rbac.USER}
    if plan.role == "control":
        out.update(services.users())
        out["kube-proxy"] = servicenet.KUBE_PROXY_USER
        out[keda.IDENTITY] = keda.USER
    if plan.role == "inference":
        out["lws-manager"] = LWS_USER
        out[extension.EXTENDER_COMPONENT] = extension.EXTENDER_USER
        out[provisioner.SERVICE] = provisioner.USER
    return out


def node_agent_config_path(cluster: Cluster) -> Path:
    return cluster.config_dir / "node-agent.json"


def _agent_config(cluster: Cluster, pools: Sequence[PoolHardware]) -> AgentConfig:
    return AgentConfig(
        cluster.name,
        cluster.plan.pod_cidr,
        cluster.plan.address,
        PORTS.node_agent_health,
        tuple(pools),
        apiserver=f"{cluster.plan.address}:{PORTS.apiserver}",
        routes_cluster_ips=cluster.plan.role == "control",
    )


def write_node_agent_config(cluster: Cluster, pools: Sequence[PoolHardware]) -> None:
    """What the cluster's node agent simulates (an inference cluster's `pools` and its
    system node); read when the agent starts."""
    if cluster.plan.role == "inference":
        pools = [*pools, INFERENCE_SYSTEM_POOL]
    config = _agent_config(cluster, pools)
    config.nodes()  # refuses more nodes than the pod range holds
    path = node_agent_config_path(cluster)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config.to_json() + "\n")


def write_files(cluster: Cluster, now: datetime.datetime) -> None:
    if cluster.plan.role != "inference":
        storage_dir(cluster.state).mkdir(parents=True, exist_ok=True)
        ca_pem = (cluster.pki_dir / "ca.crt").read_bytes()
        services.write_tls(cluster.ca(), ca_pem, cluster.config_dir, cluster.plan.address, now)
        node = _agent_config(cluster, [SYSTEM_POOL]).nodes()[0].name
        proxy = servicenet.kube_proxy_config(
            cluster.plan, cluster.kubeconfig_for("kube-proxy"), node
        )
        # kube-proxy exits when its configuration file changes: rewrite it only then.
        path = cluster.config_dir / "kube-proxy.yaml"
        text = yaml.safe_dump(proxy, sort_keys=False)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        certs = keda.cert_dir(cluster.config_dir)
        if keda_enabled(cluster) and not (certs / "tls.key").exists():
            keda.write_certs(cluster.ca(), ca_pem, certs, cluster.plan.address, now)
        return
    cert_dir = cluster.config_dir / "lws-certs"
    if not (cert_dir / "tls.key").exists():
        lws.write_serving_cert(cluster.ca(), cert_dir, cluster.plan.address, now)
    config = lws.manager_config(
        address=cluster.plan.address,
        webhook_port=PORTS.lws_webhook,
        health_port=PORTS.lws_health,
        metrics_port=PORTS.lws_metrics,
        cert_dir=cert_dir,
    )
    (cluster.config_dir / "lws-manager.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    extension.write_scheduler_config(
        cluster.config_dir / f"{extension.SCHEDULER_COMPONENT}.yaml",
        cluster.kubeconfig_for("kube-scheduler"),
        extension.extender_url(cluster.plan.address),
    )


def keda_enabled(cluster: Cluster) -> bool:
    """Whether this is the control cluster of a fleet brought up with KEDA (`up --keda`)."""
    return cluster.plan.role == "control" and keda.enabled_marker(cluster.config_dir).exists()


def _apply(cluster: Cluster, objects: list[dict[str, Any]]) -> None:
    stream = "\n".join(json.dumps(o) for o in objects)
    cluster.kubectl(
        "apply", "--server-side", "--force-conflicts", "--field-manager=modelplane-localfleet",
        "-f", "-", stdin=stream,
    )  # fmt: skip


def install(cluster: Cluster) -> None:
    """CRDs, RBAC and the GatewayClass; inference clusters: the LWS webhooks and the
    serving stack's Gateway; control: Modelplane's CRDs and the services' RBAC."""
    files = gateway.crd_files(cluster.binaries.gateway_api)
    if cluster.plan.role == "inference":
        files += sorted((cluster.binaries.lws / "crds").glob("*.yaml"))
    else:
        files += sorted(services.CRD_DIR.glob("*.yaml"))
    if keda_enabled(cluster):
        files += sorted((cluster.binaries.keda / "crds").glob("*.yaml"))
    args = ["apply", "--server-side", "--force-conflicts", "--field-manager=modelplane-localfleet"]
    for path in files:
        args += ["-f", str(path)]
    cluster.kubectl(*args)
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
    objects = [*gateway.traefik_crds(), *gateway.rbac_objects(TRAEFIK_USER)]
    objects.append(gateway.gateway_class())
    objects += servicenet.kubernetes_endpoints(cluster.plan)
    objects += node_agent_rbac.rbac_objects()
    if cluster.plan.role == "inference":
        objects += lws.rbac_objects(cluster.binaries.lws / "rbac" / "role.yaml", LWS_USER)
        objects += extension.rbac_objects()
        objects += provisioner.rbac_objects()
        objects.append(storage_class())
        objects += services.inference_gateway(PORTS.gateway_web)
        objects += lws.webhook_configurations(
            cluster.binaries.lws / "webhook",
            base_url=f"https://{cluster.plan.address}:{PORTS.lws_webhook}",
            ca_pem=(cluster.pki_dir / "ca.crt").read_bytes(),
        )
    else:
        objects += services.rbac_objects()
    if keda_enabled(cluster):
        ca_pem = (cluster.pki_dir / "ca.crt").read_bytes()
        objects += keda.registrations(cluster.binaries.keda, cluster.plan.address, ca_pem)
        objects += keda.rbac_objects(cluster.binaries.keda)
    _apply(cluster, objects)


def components(cluster: Cluster) -> list[ComponentSpec]:
    from modelplane_localfleet.cluster import ComponentSpec
    from modelplane_localfleet.probe import Probe

    address = cluster.plan.address
    out = []
    if cluster.plan.role == "inference":
        out.append(
            ComponentSpec(
                "lws-manager",
                lws.manager_command(
                    cluster.binaries.lws / "lws-manager",
                    cluster.config_dir / "lws-manager.yaml",
                    cluster.kubeconfig_for("lws-manager"),
                ),
                Probe(lws.readiness_url(address, PORTS.lws_health), "ok"),
            )
        )
        out += extension_components(cluster)
        out.append(provisioner_component(cluster))
    else:
        out.append(
            ComponentSpec(
                "kube-proxy",
                servicenet.kube_proxy_command(
                    cluster.binaries.kubernetes / "kube-proxy",
                    cluster.config_dir / "kube-proxy.yaml",
                ),
                Probe(servicenet.kube_proxy_probe_url(cluster.plan), "lastUpdated"),
            )
        )
    if node_agent_config_path(cluster).exists():
        out.append(
            ComponentSpec(
                "node-agent",
                [
                    sys.executable,
                    "-m",
                    "modelplane_localfleet.nodeagent",
                    f"--config={node_agent_config_path(cluster)}",
                    f"--kubeconfig={cluster.kubeconfig_for('node-agent')}",
                    f"--state={cluster.run_dir / 'node-agent'}",
                ],
                Probe(f"http://{address}:{PORTS.node_agent_health}/readyz", "ok"),
            )
        )
    if cluster.plan.role != "inference" and services.enabled_marker(cluster.config_dir).exists():
        for service in services.SERVICES:
            out.append(
                ComponentSpec(
                    service,
                    services.service_argv(service, sys.executable, cluster.config_dir, address),
                    Probe(f"http://{address}:{services.STATUS_PORTS[service]}/healthz", "ok"),
                )
            )
    if cluster.plan.role == "control":
        out.append(registry_component(cluster))
        model_hub = hub_component(cluster)
        if model_hub is not None:
            out.append(model_hub)
    if keda_enabled(cluster):
        out += keda_components(cluster)
    front_door = cluster.plan.role != "inference"
    traefik = gateway.traefik_command(
        cluster.binaries.traefik,
        address=address,
        web_port=PORTS.gateway_web,
        admin_port=PORTS.gateway_admin,
        hop_port=PORTS.gateway_hop if front_door else None,
    )
    if front_door:
        traefik = gateway.in_plugin_directory(traefik, cluster.run_dir / "traefik")
    out.append(
        ComponentSpec(
            "traefik",
            traefik,
            Probe(gateway.ping_url(address, PORTS.gateway_admin), "OK"),
            env=gateway.traefik_env(cluster.kubeconfig_for("traefik")),
        )
    )
    return out


def extension_components(cluster: Cluster) -> list[ComponentSpec]:
    """The extender and the second kube-scheduler that asks it (`extension`)."""
    from modelplane_localfleet.cluster import ComponentSpec
    from modelplane_localfleet.probe import Probe

    address = cluster.plan.address
    return [
        ComponentSpec(
            extension.EXTENDER_COMPONENT,
            extension.extender_command(
                cluster.kubeconfig_for(extension.EXTENDER_COMPONENT), address
            ),
            Probe(f"{extension.extender_url(address)}/readyz", "ok"),
        ),
        ComponentSpec(
            extension.SCHEDULER_COMPONENT,
            extension.scheduler_command(
                cluster.binaries.kubernetes / "kube-scheduler",
                cluster.config_dir / f"{extension.SCHEDULER_COMPONENT}.yaml",
                cluster.kubeconfig_for("kube-scheduler"),
                address,
                cluster.serving_flags(),
            ),
            cluster.https_probe(PORTS.modelplane_scheduler, "/healthz", authenticated=False),
        ),
    ]


def provisioner_component(cluster: Cluster) -> ComponentSpec:
    """The harness's RWX provisioner: volumes of class `modelplane-rwx` under `storage/<name>/`."""
    from modelplane_localfleet.cluster import ComponentSpec
    from modelplane_localfleet.probe import Probe

    status = f"{cluster.plan.address}:{PORTS.rwx_provisioner}"
    argv = provisioner.command(
        sys.executable, cluster.kubeconfig_for(provisioner.SERVICE), cluster.storage_dir, status
    )
    return ComponentSpec(provisioner.SERVICE, argv, Probe(f"http://{status}/readyz", "ok"))


def keda_components(cluster: Cluster) -> list[ComponentSpec]:
    """KEDA's operator, metrics adapter and admission webhooks (`keda`)."""
    from modelplane_localfleet.cluster import ComponentSpec
    from modelplane_localfleet.probe import Probe

    address, entry = cluster.plan.address, cluster.binaries.keda
    certs = keda.cert_dir(cluster.config_dir)
    kubeconfig = cluster.kubeconfig_for(keda.IDENTITY)
    env = keda.environment(kubeconfig)
    return [
        ComponentSpec(
            keda.OPERATOR,
            keda.operator_command(entry, address, certs),
            Probe(f"http://{address}:{keda.PORTS.operator_health}/readyz", "ok"),
            env=env,
        ),
        ComponentSpec(
            keda.ADAPTER,
            keda.adapter_command(entry, address, certs, kubeconfig),
            cluster.https_probe(keda.PORTS.adapter_https, "/readyz", authenticated=True),
            env=env,
        ),
        ComponentSpec(
            keda.WEBHOOKS,
            keda.webhooks_command(entry, address, certs),
            Probe(f"http://{address}:{keda.PORTS.webhooks_health}/readyz", "ok"),
            env=env,
        ),
    ]


def after_ready(cluster: Cluster) -> None:
    """Wait until Traefik has accepted the GatewayClass and, with KEDA, until the
    external metrics API is Available through the aggregation layer."""
    cluster.kubectl(
        "wait", "--for=condition=Accepted", "--timeout=60s", f"gatewayclass/{gateway.GATEWAY_CLASS}"
    )
    if keda_enabled(cluster):
        cluster.kubectl(
            "wait", "--for=condition=Available", "--timeout=120s", f"apiservice/{keda.APISERVICE}"
        )
