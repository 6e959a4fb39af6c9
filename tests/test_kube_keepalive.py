"""A watch's connection carries TCP keepalive, so a server gone silent ends it in bounded time:
the kernel reports the options set on a real socket."""

from __future__ import annotations

import socket

from modelplane.kube import keep_alive


def test_keep_alive_probes_an_idle_connection_and_gives_up_on_a_silent_peer() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        keep_alive(sock)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        option = sock.getsockopt
        tcp = socket.IPPROTO_TCP
        assert option(tcp, socket.TCP_KEEPIDLE) == 3  # seconds idle before the first probe
        assert option(tcp, socket.TCP_KEEPINTVL) == 2  # between probes
        assert option(tcp, socket.TCP_KEEPCNT) == 3  # unanswered probes before giving up
        assert option(tcp, socket.TCP_USER_TIMEOUT) == 9000  # ms of unacknowledged data
