"""Websocket routes, served by Channels behind the session and Origin checks in gateway_site/asgi.py."""

from django.urls import path

from usage.consumers import LiveFeedConsumer

websocket_urlpatterns = [
    path("ws/usage/live/", LiveFeedConsumer.as_asgi()),  # the admin's live request feed
]
