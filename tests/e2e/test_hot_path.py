"""The hot path makes no database query once warm: keys, routes, accounts and prices come from in-process caches
(the ledger writer thread's INSERTs are the only queries, and they happen after the response)."""

import threading

import orjson
from asgiref.sync import async_to_sync
from django.db.backends import utils as db_utils
from django.test import AsyncClient

from proxy.upstreams import http


def test_a_warm_request_makes_no_database_query(world, committed, monkeypatch):
    queries: list[tuple[str, str]] = []
    original = db_utils.CursorWrapper._execute_with_wrappers

    def counting(self, sql, *args, **kwargs):
        if threading.current_thread().name != "ledger-writer":
            queries.append((threading.current_thread().name, sql))
        return original(self, sql, *args, **kwargs)

    monkeypatch.setattr(db_utils.CursorWrapper, "_execute_with_wrappers", counting)
    client = AsyncClient()
    body = orjson.dumps({"model": "gw-openai", "messages": [{"role": "user", "content": "SAY: warm"}]})
    headers = {"authorization": f"Bearer {world.keys['alpha']}"}

    async def post_twice():
        statuses = []
        for _ in range(2):
            response = await client.post("/v1/chat/completions", body, content_type="application/json", headers=headers)
            statuses.append(response.status_code)
            if not statuses[1:]:
                queries_when_cold.extend(queries)
                queries.clear()
        await http.client().aclose()  # this event loop ends with the test
        return statuses

    queries_when_cold: list = []
    assert async_to_sync(post_twice)() == [200, 200]
    assert queries_when_cold  # the first request did load the key and the routing snapshot
    assert queries == []
