"""Container probes, executed for real against the pod's process.

`check` runs one probe attempt as kubelet would: an HTTP(S) GET on the pod IP
(or the probe's host) whose status must be 200-399, or a TCP connect. HTTPS
certificates are not verified (kubelet does not either). `exec` probes cannot
run without a container; they pass while the container's process runs. A probe
never raises: it answers (ok, detail).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from typing import Any

USER_AGENT = "kube-probe/1.36"


def resolve_port(port: object, container: Mapping[str, Any]) -> int | None:
    if isinstance(port, int):
        return port
    text = str(port)
    if text.isdigit():
        return int(text)
    for entry in container.get("ports") or []:
        if entry.get("name") == text:
            return int(entry["containerPort"])
    return None


async def check(
    probe: Mapping[str, Any], container: Mapping[str, Any], pod_ip: str, process_alive: bool
) -> tuple[bool, str]:
    timeout = float(probe.get("timeoutSeconds", 1))
    if "exec" in probe:
        return process_alive, "exec probe (passes while the process runs)"
    action = probe.get("httpGet") or probe.get("tcpSocket")
    if action is None:
        return False, "probe has no handler the local fleet runs (httpGet, tcpSocket, exec)"
    port = resolve_port(action.get("port"), container)
    if port is None:
        return False, f"port {action.get('port')!r} is not a container port"
    host = action.get("host") or pod_ip
    try:
        if "httpGet" in probe:
            return await asyncio.wait_for(_http(action, host, port), timeout)
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        writer.close()
        return True, "connected"
    except TimeoutError:
        return False, f"timeout after {timeout:g}s"
    except OSError as error:
        return False, f"dial {host}:{port}: {error.strerror or error}"


async def _http(action: Mapping[str, Any], host: str, port: int) -> tuple[bool, str]:
    context = None
    if str(action.get("scheme", "HTTP")).upper() == "HTTPS":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection(host, port, ssl=context)
    try:
        path = action.get("path") or "/"
        headers = {"Host": f"{host}:{port}", "User-Agent": USER_AGENT, "Accept": "*/*"}
        for header in action.get("httpHeaders") or []:
            headers[header["name"]] = header["value"]
        lines = [f"GET {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
        writer.write(("\r\n".join([*lines, "Connection: close", "", ""])).encode())
        await writer.drain()
        status_line = (await reader.readline()).decode(errors="replace").split()
        code = int(status_line[1]) if len(status_line) > 1 and status_line[1].isdigit() else 0
    finally:
        writer.close()
    if 200 <= code < 400:
        return True, f"HTTP {code}"
    return False, f"HTTP probe failed with statuscode: {code}"
