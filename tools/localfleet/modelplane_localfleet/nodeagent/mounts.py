"""Private mount namespaces with bind mounts, through libc (no external commands).

`bind_privately(pairs)` moves the calling process into a mount namespace of its
own, makes `/` private there (so nothing propagates back to the machine) and
bind-mounts each `(source, target)` in order; a target in `read_only` is then
remounted read-only (a bind mount takes the flag only on a remount). The node agent uses it once for
itself (the cluster's hosts file over /etc/hosts) and in each container process
between fork and exec (emptyDir volumes), so it only calls libc directly.
"""

from __future__ import annotations

import ctypes
from collections.abc import Collection, Sequence

_CLONE_NEWNS = 0x00020000
_MS_RDONLY = 0x1
_MS_REMOUNT = 0x20
_MS_BIND = 0x1000
_MS_REC = 0x4000
_MS_PRIVATE = 0x40000


def bind_privately(pairs: Sequence[tuple[bytes, bytes]], read_only: Collection[bytes] = ()) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS) failed")
    if libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), "making / private failed")
    for source, target in pairs:
        if libc.mount(source, target, None, _MS_BIND, None) != 0:
            raise OSError(ctypes.get_errno(), f"bind-mounting {source!r} on {target!r} failed")
        flags = _MS_BIND | _MS_REMOUNT | _MS_RDONLY
        if target in read_only and libc.mount(b"none", target, None, flags, None) != 0:
            raise OSError(ctypes.get_errno(), f"making {target!r} read-only failed")
