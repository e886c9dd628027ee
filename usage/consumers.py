"""The live feed's websocket (/ws/usage/live/): staff who may view the ledger receive each finished request.

The socket is authenticated by the admin's session cookie (gateway_site/asgi.py wraps websockets in Channels'
AuthMiddlewareStack behind an allowed-hosts Origin check). Anyone else is refused before the handshake completes
(HTTP 403). Events come from usage.feed through the channel layer group `usage.live`.
"""

import asyncio

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from . import feed


@database_sync_to_async
def may_watch(user) -> bool:
    return bool(
        user is not None and user.is_authenticated and user.is_active and user.is_staff
        and user.has_perm("usage.view_usagerecord")
    )  # fmt: skip


class LiveFeedConsumer(AsyncJsonWebsocketConsumer):
    joined = False
    heartbeat: asyncio.Task | None = None

    async def connect(self):
        if not await may_watch(self.scope.get("user")):
            await self.close(code=4403)  # before accept: the handshake is refused
            return
        await self.channel_layer.group_add(feed.GROUP, self.channel_name)
        self.joined = True
        await self.accept()
        await feed.watcher_joined(self.channel_name)
        self.heartbeat = asyncio.create_task(self._beat())

    async def disconnect(self, code):
        if not self.joined:
            return
        self.joined = False
        if self.heartbeat is not None:
            self.heartbeat.cancel()
        await self.channel_layer.group_discard(feed.GROUP, self.channel_name)
        await feed.watcher_left(self.channel_name)

    async def receive_json(self, content, **kwargs):
        pass  # the feed only speaks

    async def request_finished(self, message):
        await self.send_json(message["event"])

    async def _beat(self):
        while True:
            await asyncio.sleep(feed.HEARTBEAT_SECONDS)
            await feed.watcher_heartbeat(self.channel_name)
