"""Websocket routes (none are public yet; the channel layer is configured for the features that will use it)."""

websocket_urlpatterns: list = []
