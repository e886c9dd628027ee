"""The servers with a graceful stop, as bin/serve runs them:

    python -m gateway_site.server <daphne's own arguments>
    python -m gateway_site.server uvicorn --host HOST --port PORT

Daphne alone stops within a second of SIGTERM: it cancels every request in flight, so a stream is cut without
an error event. Every deploy sends SIGTERM, so on SIGTERM or SIGINT the server here:

  1. stops listening (new connections go to the other processes behind the load balancer);
  2. lets the requests in flight (daphne: and the responses running on the Responses WebSocket, proxy/ws.py) run
     on for up to GATEWAY_SHUTDOWN_GRACE_SECONDS;
  3. ends the requests still running with an error in each caller's format (proxy.relay.end_streams: an error
     event for a stream, a 529/503 `overloaded` answer for a request still waiting for its upstream; Claude Code
     and the SDKs retry on both) and gives them END_SECONDS to send it; their rows are written like any other
     (outcome `interrupted`, the tokens streamed so far);
  4. drains the ledger (usage.ledger.stop; rows the database cannot take now stay in the spool for the next
     start), exports the trace spans still queued (usage.tracing.shutdown), closes the upstream connections, and
     stops (websockets are closed then).

Daphne: GracefulServer does all four; a second signal skips the wait of step 2. uvicorn does 1, 2 and 4 itself
(its ASGI lifespan drains the ledger, gateway_site/asgi.py); GracefulUvicorn adds step 3. Both start the ledger
writer at start-up, which replays the spools of processes that died (usage/ledger.py).

The plain daphne command (`daphne ... gateway_site.asgi:application`, README "Operations") gets GracefulServer
too: gateway_site/asgi.py calls make_daphne_graceful() as daphne's command line loads it, and that command line
builds its server only after loading the application. So the ledger guarantee does not depend on bin/serve.

Daphne's modules are imported only when daphne serves: gateway_site/asgi.py tells the servers apart by them.
"""

import argparse
import asyncio
import logging
import os
import shutil
import signal
import socket
import sys

log = logging.getLogger("gateway_site.server")

END_SECONDS = 5.0  # after the grace: time for the ended requests to send their error and finish


def daphne_cli():
    from daphne.cli import CommandLineInterface  # imports daphne.server first, which installs twisted's reactor

    class GracefulCLI(CommandLineInterface):
        server_class = graceful_server()

    return GracefulCLI()


def make_daphne_graceful() -> None:
    """Under the plain daphne command, have its command line build a GracefulServer (replay at start, drain on
    SIGTERM) instead of daphne's Server. Under bin/serve GracefulCLI builds one already (the same class: setting it
    here changes nothing); daphne serving without its command line (`manage.py runserver`) is left alone. Either
    way one server installs the signal handlers, once, as it starts."""
    cli = sys.modules.get("daphne.cli")
    if cli is None:
        return
    graceful = graceful_server()
    if not issubclass(cli.CommandLineInterface.server_class, graceful):
        cli.CommandLineInterface.server_class = graceful


_graceful_server = None


def graceful_server():
    """The GracefulServer class, built once (its base is daphne's Server, imported only when daphne serves)."""
    global _graceful_server
    if _graceful_server is None:
        _graceful_server = _build_graceful_server()
    return _graceful_server


def _build_graceful_server():
    from daphne.server import Server  # first: it installs the asyncio reactor twisted must use
    from daphne.ws_protocol import WebSocketProtocol
    from twisted.internet import reactor

    class GracefulServer(Server):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, **websocket_sizes(), "signal_handlers": False})
            self.ports: list = []
            self.draining: asyncio.Future | None = None
            self.hurry = asyncio.Event()

        def listen_success(self, port):
            self.ports.append(port)
            return super().listen_success(port)

        def run(self):
            reactor.callWhenRunning(self._when_running)
            super().run()

        def _when_running(self) -> None:
            from usage import ledger

            loop = asyncio.get_event_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self._signalled, signum)
            ledger.start()  # replays what processes that died left in the spool

        def _signalled(self, signum: int) -> None:
            if self.draining is None:
                log.info("%s: draining (no new connections)", signal.Signals(signum).name)
                self.draining = asyncio.ensure_future(self._drain())
            else:
                self.hurry.set()

        def requests_in_flight(self) -> int:
            """HTTP requests still running, and responses running on the Responses WebSocket (an open socket with
            none running is not waited for)."""
            from proxy import ws

            return ws.responses_in_flight() + sum(
                1
                for protocol, details in list(self.connections.items())
                if not isinstance(protocol, WebSocketProtocol)
                and (app := details.get("application_instance")) is not None
                and not app.done()
            )

        async def _drain(self) -> None:
            from django.conf import settings

            from proxy import relay
            from proxy.upstreams import http as http_client
            from usage import ledger, tracing

            try:
                for port in self.ports:
                    port.stopListening()
                await self._wait_idle(settings.GATEWAY_SHUTDOWN_GRACE_SECONDS)
                if self.requests_in_flight():
                    log.warning("grace period over: %d requests ended with an error", relay.end_streams())
                    self.hurry.clear()
                    await self._wait_idle(END_SECONDS)
                await asyncio.to_thread(ledger.stop)
                await asyncio.to_thread(tracing.shutdown)  # the spans still queued are exported
                await http_client.close_all()
            except Exception:
                log.exception("graceful shutdown failed; stopping now")
            finally:
                left = self.requests_in_flight()
                if left:
                    log.warning("stopping with %d requests still in flight (they are cancelled)", left)
                self.stop()

        async def _wait_idle(self, seconds: float) -> None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + seconds
            while self.requests_in_flight() and loop.time() < deadline and not self.hurry.is_set():
                await asyncio.sleep(0.05)

    return GracefulServer


def websocket_sizes() -> dict[str, int]:
    """Daphne refuses WebSocket messages over 1 MB by default, cutting the connection (1009); a Codex request
    on the Responses socket (proxy/ws.py) carries the whole conversation and grows past that. The server takes
    up to twice GATEWAY_WS_MAX_FRAME_BYTES, so a frame between the two gets the socket's own `error` event and the
    connection stays open, and memory stays bounded."""
    from django.conf import settings

    size = 2 * settings.GATEWAY_WS_MAX_FRAME_BYTES
    return {"websocket_max_message_size": size, "websocket_max_frame_size": size}


def run_uvicorn(argv: list[str]) -> None:
    """uvicorn as bin/serve ran it before (uvloop, httptools, no access log, proxy headers), draining gracefully."""
    import uvicorn

    ap = argparse.ArgumentParser(prog="python -m gateway_site.server uvicorn")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--fd", type=int, default=None, help="serve this inherited listening socket (a worker)")
    args = ap.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_site.settings")
    from django.conf import settings

    grace = settings.GATEWAY_SHUTDOWN_GRACE_SECONDS

    class GracefulUvicorn(uvicorn.Server):
        async def _wait_tasks_to_complete(self) -> None:  # uvicorn's wait for the requests in flight at shutdown
            from proxy import relay

            try:
                await asyncio.wait_for(super()._wait_tasks_to_complete(), grace)
            except asyncio.TimeoutError:
                log.warning("grace period over: %d requests ended with an error", relay.end_streams())
                await super()._wait_tasks_to_complete()  # bounded by timeout_graceful_shutdown

    config = uvicorn.Config(
        "gateway_site.asgi:application", host=args.host, port=args.port, loop="uvloop", http="httptools",
        access_log=False, proxy_headers=True, lifespan="on", timeout_graceful_shutdown=grace + END_SECONDS,
        ws_max_size=websocket_sizes()["websocket_max_message_size"],
    )  # fmt: skip
    GracefulUvicorn(config).run(sockets=None if args.fd is None else [socket.socket(fileno=args.fd)])


def run_workers(argv: list[str], workers: int) -> int:
    """Several workers on one port (gateway_site/workers.py): bind here, start each with the socket's fd."""
    import logging.config

    from django.conf import settings

    from gateway_site import workers as supervisor

    # The master logs as the workers do, without django.setup(): no app's threads may run across the fork.
    logging.config.dictConfig(settings.LOGGING)
    uvicorn = argv[:1] == ["uvicorn"]
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--host", "-b", "--bind", dest="host", default="127.0.0.1")
    ap.add_argument("--port", "-p", dest="port", type=int, default=8000)
    where, rest = ap.parse_known_args(argv[1:] if uvicorn else argv)
    if not uvicorn and ":" in where.host:
        sys.exit("GATEWAY_WORKERS above 1 with daphne listens on IPv4 only; use GATEWAY_SERVER=uvicorn for IPv6")
    sock = supervisor.bind(where.host, where.port)
    made = supervisor.metrics_dir(settings.DATA_DIR)
    me = [sys.executable, "-m", "gateway_site.server"]
    command = (lambda fd: [*me, "uvicorn", "--fd", str(fd)]) if uvicorn else (lambda fd: [*me, "--fd", str(fd), *rest])
    stop = settings.GATEWAY_SHUTDOWN_GRACE_SECONDS + END_SECONDS + supervisor.STOP_MARGIN_SECONDS
    try:
        return supervisor.Master(sock, workers, command, stop).run()
    finally:
        if made:
            shutil.rmtree(made, ignore_errors=True)


def main(argv: list[str]) -> int:
    from django.conf import settings

    from gateway_site import workers

    count = workers.count(settings.GATEWAY_WORKERS, settings.REDIS_URL, settings.DATABASES["default"]["ENGINE"])
    if count > 1:
        return run_workers(argv, count)
    if argv[:1] == ["uvicorn"]:
        run_uvicorn(argv[1:])
        return 0
    return daphne_cli().run(argv)


if __name__ == "__main__":
    from gateway_site.startup import settings_or_exit

    settings_or_exit()
    # Through the module gateway_site/asgi.py imports too, not this __main__ copy: one GracefulServer class.
    from gateway_site import server

    sys.exit(server.main(sys.argv[1:]))
