"""Private mount namespaces with bind mounts, through libc (no external commands).

`bind_privately(pairs)` moves the calling process into a mount namespace of its
own, makes `/` private there (so nothing propagates back to the machine) and
bind-mounts each `(source, target)` in order. The node agent uses it once for
itself (the cluster's hosts file over /etc/hosts) and in each container process
between fork and exec (emptyDir volumes), so it only calls libc directly.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

_CLONE_NEWNS = 0x00020000
_MS_BIND = 0x1000
_MS_REC = 0x4000
_MS_PRIVATE = 0x40000


def bind_privately(pairs: Sequence[tuple[bytes, bytes]]) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS) failed")
    if libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), "making / private failed")
    for source, target in pairs:
        if libc.mount(source, target, None, _MS_BIND, None) != 0:
            raise OSError(ctypes.get_errno(), f"bind-mounting {source!r} on {target!r} failed")
