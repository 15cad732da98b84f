"""Free TCP ports on 127.0.0.1, for the servers the tests start.

``free_port()`` asks the kernel for one (binding port 0). A port is free when it is
returned, not reserved: another process may take it before the server binds it, so the
harnesses that start servers retry with another port when theirs is taken.

``free_port(below_ephemeral=True)`` picks one below the kernel's ephemeral range instead
(``/proc/sys/net/ipv4/ip_local_port_range``): a port from that range can be taken by any
outgoing connection (the apiserver's to etcd, say) between the moment it is chosen and the
moment the server binds it, which was seen once with the kubelet. The local cluster
(tests/harness/cluster.py), which starts several long-lived servers at once, uses these.

No port is handed out twice by one process, so ports chosen in a row, before any server
has bound them, all differ.
"""

from __future__ import annotations

import secrets
import socket
from pathlib import Path

HOST = "127.0.0.1"
_LOWEST = 20000  # below ephemeral: chosen from [_LOWEST, start of the ephemeral range)
_ATTEMPTS = 1000
_GIVEN: set[int] = set()


def free_port(*, below_ephemeral: bool = False) -> int:
    """A TCP port nothing listens on at 127.0.0.1 right now, never returned before here."""
    low = _ephemeral_start() if below_ephemeral else 0
    for _ in range(_ATTEMPTS):
        wanted = secrets.randbelow(low - _LOWEST) + _LOWEST if low > _LOWEST + 1000 else 0
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((HOST, wanted))
            except OSError:
                continue  # taken: try another one
            port: int = sock.getsockname()[1]
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port
    raise RuntimeError(f"found no free TCP port on {HOST} in {_ATTEMPTS} attempts")


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0  # not Linux: let the kernel choose
