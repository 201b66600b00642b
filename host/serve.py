"""`steppe dev` / `steppe start`: the host started, then served over uvicorn until a signal, then stopped in
order. The runners are on the path to the first answer, so they start first (early_start.py): the host's
own modules (app.py), then the web layer and uvicorn (Host.start's `warm`), are imported in a thread while
they start. Only light modules are imported at the top of this one."""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import sys
from typing import TYPE_CHECKING

from .db import StorageError
from .early_start import EarlyStart
from .hostfile import remove_host_file, write_host_file
from .listen import ListenError, listening_sockets
from .logs import DropHandshakeNoise
from .parent_watch import watch_parent_from_env
from .project import ProjectError
from .settings import Settings
from .web.guard import AdminPolicy

if TYPE_CHECKING:
    from .app import Host
    from .http_server import SignalledServer
    from .web.front import FrontDoor

MIN_TOKEN_LENGTH = 16  # shorter admin tokens get a warning at start-up
# imported in Host.start's thread while the runners start: the HTTP server, and what uvicorn.Config.load()
# imports when the server starts (the WebSocket protocol, a quarter of uvicorn's import time, and lifespan)
WARM = ("http_server", "web.http_protocol", "uvicorn.protocols.websockets.auto", "uvicorn.lifespan.off")


def settle_garbage_collector() -> None:
    """After start-up: move everything loaded so far out of the collector's sight (gc.freeze), and collect
    the young generation less often. Full collections over a large heap were the main source of
    tail latency on the request path (p99 halved in a wrk run). Start-up itself ran without collections
    (cli.cmd_serve): they resume here. No full collection first: it walked the whole start-up heap on the path
    to the first answer (25–250 ms here) to find ~550 objects of garbage, which stay frozen instead."""
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)
    gc.enable()


async def _host(settings: Settings) -> Host:
    """The runners spawned, then the Host built (its modules imported in a thread while they start)."""
    early = EarlyStart(settings)
    try:
        app = await asyncio.to_thread(importlib.import_module, f"{__package__}.app")
        host: Host = app.Host(settings, early=early)
    except BaseException:
        await early.abandon()
        raise
    return host


async def serve(settings: Settings) -> int:
    host = await _host(settings)
    try:
        app = await host.start(warm=tuple(m if m.startswith("uvicorn") else f"{__package__}.{m}" for m in WARM))
    except ProjectError as e:
        host.logs.write("error", f"cannot start: {e}")
        await host.stop()
        return 1
    except StorageError as e:  # e.g. the disk is full while recovering the journal: stop the runners first
        host.logs.write("error", f"cannot start: {e}")
        await host.stop()
        return 2
    try:
        try:
            sockets = listening_sockets(settings.bind_address, settings.port)
        except ListenError as e:
            host.logs.write("error", f"cannot start: {e}")
            return 3  # uvicorn's exit status for a server that could not start
        server = _server(settings, host, app)
        write_host_file(settings, host.logs)  # `steppe dlq`, `emit`, `list` find this host without --port
        parent_watch = watch_parent_from_env()  # started by a test helper: stop when it is gone
        try:
            await server.serve(sockets=sockets)
        finally:
            if parent_watch is not None:
                parent_watch.cancel()
            remove_host_file(settings)
    finally:  # also when serving could not begin: the runners and the stores are stopped in order
        host.logs.write("info", "shutting down")
        await host.stop()
    return 0 if server.started else 1


def _server(settings: Settings, host: Host, app: FrontDoor) -> SignalledServer:
    """uvicorn's server for the host's front door, its start-up lines logged."""
    settle_garbage_collector()
    import uvicorn  # these three: imported by start (warm), beside the runners starting

    from .http_server import SignalledServer
    from .web.http_protocol import bounded_protocol, head_bound

    # request heads: over max_headers the host answers a JSON 431 (HeaderLimit); far over it (head_bound) the
    # HTTP parser stops reading the connection (httptools: 431 JSON; h11: its own 400)
    # the WebSocket library's own limit on a handshake line (8 KB) refused a longer one without an answer (a
    # long JWT in `?authToken=`: the client waited ~36 s for nothing); the host's head limits bound it instead,
    # answering 414/431. Its module, imported by start's warm-up, reads the limit at each handshake.
    if (http11 := sys.modules.get("websockets.http11")) is not None:
        http11.MAX_LINE_LENGTH = max(8192, head_bound(settings.max_headers))  # type: ignore[attr-defined]
    config = uvicorn.Config(app, host=settings.bind_address, port=settings.port, log_level="warning", lifespan="off",
                            ws_ping_interval=20, ws_ping_timeout=20, ws_max_size=settings.max_body,
                            http=bounded_protocol(settings.max_headers, settings.header_timeout,
                                                 settings.body_timeout),
                            h11_max_incomplete_event_size=head_bound(settings.max_headers),
                            ws_per_message_deflate=settings.ws_compression)
    server = SignalledServer(config)
    server.on_exit = [host.telemetry.feed.close] if host.telemetry else []  # end the Workbench's live feeds

    def listening() -> None:  # once the socket is bound: a port in use says so instead (uvicorn's error)
        host.logs.write("info", f"listening on http://{settings.bind_address}:{settings.port} ({settings.mode} "
                        "mode); " + AdminPolicy.of(settings).describe())

    server.on_listening = [listening]
    if settings.mode == "dev" and settings.workbench:  # the Workbench is about to be opened: its app is built
        server.on_listening.append(app.build_soon)  # in the background (`start` builds it on the first admin request)
    logging.getLogger("uvicorn.error").addFilter(DropHandshakeNoise())
    if settings.admin_token and len(settings.admin_token) < MIN_TOKEN_LENGTH:
        host.logs.write("warn", f"the admin token is shorter than {MIN_TOKEN_LENGTH} characters: use a long random "
                        "one (e.g. `openssl rand -hex 32`)")
    return server
