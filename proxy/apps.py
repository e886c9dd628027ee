from django.apps import AppConfig


class ProxyConfig(AppConfig):
    name = "proxy"
    verbose_name = "Proxy"

    def ready(self):
        from . import auth, routing, signals  # noqa: F401  (signals: drop caches when the config changes)

        auth.on_change(routing.cache_clear)  # a key or config change drops the routing snapshot too

        from . import responses_store

        responses_store.configure()  # the key that seals reasoning into Responses' encrypted_content

        from django.conf import settings

        from .formats import thinking_seal

        thinking_seal.configure(settings.GATEWAY_ENCRYPTION_KEY)  # signs the thinking blocks the gateway makes
