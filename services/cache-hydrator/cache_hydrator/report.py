"""The job's progress, published into a ConfigMap of its own namespace for cache-hydrator.

The controller cannot read the volume or the pod's log through the `Fleet` API, but it
can read a ConfigMap. `ConfigMapReport(name)` merge-patches `data["status.json"]` of the
ConfigMap `name` (which the controller made, beside a Role that lets the job's
ServiceAccount `get` and `patch` that one ConfigMap only) with the pod's in-cluster
credentials: the projected token, the cluster's CA and `KUBERNETES_SERVICE_HOST/PORT`.
A failed patch is printed to stderr and the run goes on: the status file and stdout stay
the record, and the next report tries again.
"""

from __future__ import annotations

import os
import ssl
import sys
from pathlib import Path

import httpx

ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
KEY = "status.json"
TIMEOUT_S = 4.0


class ConfigMapReport:
    def __init__(self, name: str, account: Path | None = None) -> None:
        account = account or ACCOUNT
        host = os.environ.get("KUBERNETES_SERVICE_HOST", "")
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if not host or not (account / "token").exists():
            raise ValueError(
                f"--report-configmap {name}: no in-cluster credentials "
                f"(KUBERNETES_SERVICE_HOST, {account}/token)"
            )
        namespace = (account / "namespace").read_text().strip()
        server = f"[{host}]" if ":" in host else host
        self.url = f"https://{server}:{port}/api/v1/namespaces/{namespace}/configmaps/{name}"
        self.account = account
        trust = ssl.create_default_context(cafile=str(account / "ca.crt"))
        self.client = httpx.Client(verify=trust, timeout=TIMEOUT_S)

    def __call__(self, text: str) -> None:
        token = (self.account / "token").read_text().strip()  # projected: it rotates
        try:
            reply = self.client.patch(
                self.url,
                json={"data": {KEY: text}},
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/merge-patch+json",
                },
            )
            reply.raise_for_status()
        except httpx.HTTPError as error:
            print(f"cannot report progress to {self.url}: {error}", file=sys.stderr, flush=True)
