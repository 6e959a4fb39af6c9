"""The local fleet: real Kubernetes control planes on one machine, for e2e tests and demos.

Built so far: the fleet's PKI (`pki`), kubeconfigs (`kubeconfig`) and network
namespace (`netns`). The binaries build, the process supervisor and the
`modelplane-localfleet` command come next (issue 3).
"""
