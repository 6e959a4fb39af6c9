"""A generated kubeconfig embeds the fleet CA and the client certificate in one context."""

from __future__ import annotations

import base64
import datetime

import yaml
from cryptography import x509
from modelplane_localfleet.kubeconfig import dump, kubeconfig
from modelplane_localfleet.pki import CertificateAuthority

NOW = datetime.datetime.now(datetime.UTC)


def test_the_kubeconfig_embeds_ca_and_client_certificate_in_one_context() -> None:
    ca = CertificateAuthority.create("fleet-ca", NOW)
    client = ca.issue("admin", NOW, organizations=["system:masters"], client=True)
    config = yaml.safe_load(
        dump(kubeconfig("us-east", "https://10.200.0.2:6443", ca.pair().cert_pem, "admin", client))
    )
    assert config["current-context"] == "us-east"
    assert config["contexts"] == [
        {"name": "us-east", "context": {"cluster": "us-east", "user": "admin"}}
    ]
    (cluster,) = config["clusters"]
    assert cluster["cluster"]["server"] == "https://10.200.0.2:6443"
    assert base64.b64decode(cluster["cluster"]["certificate-authority-data"]) == ca.pair().cert_pem
    cert = x509.load_pem_x509_certificate(
        base64.b64decode(config["users"][0]["user"]["client-certificate-data"])
    )
    assert cert.subject.rfc4514_string() == "CN=admin,O=system:masters"
    assert cert.issuer == ca.cert.subject
