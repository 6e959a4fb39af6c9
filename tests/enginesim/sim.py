"""Simulator processes for the tests: start one, learn its port from its log, stop it.

Each `Sim` is a real `python -m modelplane_enginesim` process with `--port 0`;
its stderr is read by a thread, so the log lines are there for assertions and
the pipe never fills. The environment is cleaned of the variables the
simulator reads, so the tests see only what they pass.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

READ_VARS = re.compile(r"^(MODELPLANE_POD_|LWS_|VLLM_NIXL_)")
START_TIMEOUT_S = 10.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Sim:
    def __init__(self, *args: str, host: str = "127.0.0.1", env: Mapping[str, str] = {}) -> None:
        clean = {k: v for k, v in os.environ.items() if not READ_VARS.match(k)}
        self.began = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "modelplane_enginesim", "--host", host, "--port", "0", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**clean, **env},
        )
        self.host = host
        self.lines: list[str] = []
        self._eof = False
        self._changed = threading.Condition()
        threading.Thread(target=self._drain, daemon=True).start()
        line = self.wait_log("event=listening", START_TIMEOUT_S)
        match = re.search(r" port=(\d+)", line)
        assert match, line
        self.port = int(match.group(1))
        self.url = f"http://{host}:{self.port}"
        self.client = httpx.Client(base_url=self.url, timeout=10.0)

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    def wait_log(self, needle: str, timeout: float = 5.0) -> str:
        """The first log line containing `needle`, waiting for it to appear."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    if needle in line:
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    raise AssertionError(f"no log line with {needle!r}; log:\n" + self.log())
                self._changed.wait(min(left, 0.1))

    def log(self) -> str:
        return "\n".join(self.lines)

    def get(self, path: str) -> httpx.Response:
        return self.client.get(path)

    def post(self, path: str, body: Any) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.client.post(path, content=content)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 5.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout)
        finally:
            self.client.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(5)
        self.client.close()


def wait_until(check: Callable[[], bool], timeout: float = 5.0, every: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return check()


def parse_sse(text: str) -> list[tuple[str | None, str]]:
    """(event name or None, data) of each server-sent event; asserts the blank-line framing."""
    assert text.endswith("\n\n"), text[-80:]
    events = []
    for block in text.split("\n\n")[:-1]:
        event, data = None, None
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            if field == "event":
                event = value
            elif field == "data":
                data = value
            else:
                raise AssertionError(f"unexpected SSE line {line!r}")
        assert data is not None, block
        events.append((event, data))
    return events


def stream_text(sim: Sim, path: str, body: Any) -> tuple[httpx.Response, str]:
    with sim.client.stream("POST", path, json=body) as response:
        text = "".join(response.iter_text())
    return response, text


def chunks(text: str) -> Iterator[dict[str, Any]]:
    for _, data in parse_sse(text):
        if data != "[DONE]":
            yield json.loads(data)
