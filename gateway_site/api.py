"""The one NinjaAPI. Every route lives in proxy.api; errors are rendered there in the caller's own format."""

from ninja import NinjaAPI

api = NinjaAPI(
    title="Gatehouse",
    version="1",
    description="Anthropic Messages and OpenAI Chat Completions in front of any provider.",
    # Swagger UI from ninja's own static files (collected into /static/ by collectstatic), not from a CDN, so
    # /docs works offline: ninja renders its local template when "ninja" is in INSTALLED_APPS (settings.py).
    docs_url="/docs",
    openapi_url="/openapi.json",
    urls_namespace="gateway",
)
api.add_router("", "batches.api.router")  # batch and file endpoints (batches/api.py)
api.add_router("", "proxy.api.router")
api.add_router("", "gateway_site.coding_gateway.router")  # the Coding Gateway's /chat (docs/coding-gateway-api.md)

from proxy.api import install_error_handlers  # noqa: E402

install_error_handlers(api)
