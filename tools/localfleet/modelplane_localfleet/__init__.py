"""The local fleet: real Kubernetes control planes on one machine, for e2e tests and demos.

Built so far: the binaries (`binaries`, `components`, `versions`, `wrappers`,
`gomod`: Kubernetes, etcd, LeaderWorkerSet and the Gateway API CRDs from the Go
module proxy, cached per version), the fleet's PKI (`pki`), kubeconfigs
(`kubeconfig`), network namespace (`netns`) and one control plane
(`controlplane`). The `up`/`down` harness, inference clusters, LWS, Traefik and
the node agent come next (issues 3 and 4).
"""
