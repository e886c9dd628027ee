"""daphne with a graceful stop: `python -m gateway_site.server <daphne's own arguments>` (what bin/serve runs).

Daphne alone stops within a second of SIGTERM: it cancels every request in flight, so a stream is cut without
an error event. Every deploy sends SIGTERM, so this runner, on SIGTERM or SIGINT:

  1. stops listening (new connections go to the other processes behind the load balancer);
  2. lets the requests in flight run on for up to GATEWAY_SHUTDOWN_GRACE_SECONDS;
  3. ends the streams still running with an error event in each caller's format (proxy.relay.end_streams;
     Claude Code and the SDKs retry on it) and gives them END_SECONDS to send it; their rows are written like
     any other (outcome `interrupted`, the tokens streamed so far);
  4. drains the ledger (usage.ledger.stop; rows the database cannot take now stay in the spool for the next
     start), closes the upstream connections, and stops the reactor (websockets are closed then).

A second signal skips the wait of step 2. At start it starts the ledger writer, which replays the spools of
processes that died (usage/ledger.py). uvicorn (GATEWAY_SERVER=uvicorn) drains on its own: it stops accepting
and waits `--timeout-graceful-shutdown` (bin/serve passes the same grace), then the ASGI lifespan drains the
ledger (gateway_site/asgi.py).
"""

import asyncio
import logging
import signal
import sys

from daphne.cli import CommandLineInterface
from daphne.server import Server  # first: it installs the asyncio reactor twisted must use
from daphne.ws_protocol import WebSocketProtocol
from twisted.internet import reactor

log = logging.getLogger("gateway_site.server")

END_SECONDS = 5.0  # after the grace: time for the ended streams to send their error event and finish


class GracefulServer(Server):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{**kwargs, "signal_handlers": False})
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
        return sum(
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
        from usage import ledger

        try:
            for port in self.ports:
                port.stopListening()
            await self._wait_idle(settings.GATEWAY_SHUTDOWN_GRACE_SECONDS)
            if self.requests_in_flight():
                ended = relay.end_streams()
                log.warning("grace period over: %d streams ended with an error event", ended)
                self.hurry.clear()
                await self._wait_idle(END_SECONDS)
            await asyncio.to_thread(ledger.stop)
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


class GracefulCLI(CommandLineInterface):
    server_class = GracefulServer


if __name__ == "__main__":
    sys.exit(GracefulCLI().run(sys.argv[1:]))
