"""The host's listening sockets, bound before uvicorn starts serving: a bind that fails (a port in use, a host
name that does not resolve, an address this machine does not have) stops the start with one line naming the
address and the settings that chose it, instead of uvicorn's bare `[Errno 98] ...` after the steps loaded."""

from __future__ import annotations

import errno
import socket


class ListenError(Exception):
    pass


def listening_sockets(host: str, port: int) -> list[socket.socket]:
    """One bound socket per address `host` resolves to (as asyncio's create_server binds them: reused
    addresses, IPv6 sockets IPv6 only); uvicorn listens on them."""
    where = f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as e:
        raise ListenError(f"cannot listen on {where}: the host name does not resolve ({_reason(e)}); "
                          "set `host` (--host, STEPPE_HOST or steppe.toml) to an address of this machine") from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):  # getaddrinfo may repeat an address
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except OSError as e:
        for sock in sockets:
            sock.close()
        if e.errno == errno.EADDRINUSE:
            hint = "another process listens there: stop it, or set another `port` (--port, STEPPE_PORT, steppe.toml)"
        else:
            hint = "set `host` (--host, STEPPE_HOST or steppe.toml) to an address of this machine, e.g. 127.0.0.1"
        raise ListenError(f"cannot listen on {where}: {_reason(e)}; {hint}") from None
    return sockets


def _reason(e: BaseException) -> str:
    return getattr(e, "strerror", None) or str(e)
