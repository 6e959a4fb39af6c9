"""Health probes for the fleet's components, run from inside the fleet's namespace.

A probe is an HTTP(S) GET whose body must contain an expected text. HTTPS probes
verify the server against the cluster's CA and may present a client certificate
(the apiserver's `/readyz` wants an authenticated user). A probe never raises:
it answers (healthy, detail) where detail says what went wrong in a few words.
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Probe:
    """GET `url` and look for `expect` in the body."""

    url: str
    expect: str
    ca: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None

    def check(self, timeout_s: float = 2.0) -> tuple[bool, str]:
        context = None
        if self.url.startswith("https:"):
            context = ssl.create_default_context(cafile=str(self.ca) if self.ca else None)
            if self.client_cert and self.client_key:
                context.load_cert_chain(str(self.client_cert), str(self.client_key))
        try:
            with urllib.request.urlopen(self.url, timeout=timeout_s, context=context) as reply:
                body = reply.read(4096).decode(errors="replace")
        except urllib.error.HTTPError as error:
            return False, f"HTTP {error.code}"
        except (OSError, ssl.SSLError) as error:
            reason = getattr(error, "reason", error)
            return False, str(reason)[:80]
        if self.expect not in body:
            return False, f"unexpected answer {body[:40]!r}"
        return True, "ok"
