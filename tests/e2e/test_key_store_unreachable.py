"""A key cannot be checked (the database unreachable or broken): the caller still gets an error in its own API's
format with the security headers, never the server's HTML 500 page."""

import httpx

from tests.conftest import start_gateway, stop_gateway


def test_an_unreadable_key_store_answers_in_the_callers_format(tmp_path, django_db_setup):
    empty = tmp_path / "no-tables.sqlite3"  # a database with no tables: every key lookup fails
    empty.touch()
    server = start_gateway({"DATABASE_URL": f"sqlite:///{empty}"}, tmp_dir=tmp_path)
    try:
        openai_style = httpx.post(server.url + "/v1/chat/completions", json={"model": "m", "messages": []},
                                  headers={"authorization": "Bearer gh_a-key-that-cannot-be-checked-000"})  # fmt: skip
        assert openai_style.status_code == 500
        assert openai_style.json()["error"]["message"] == "internal gateway error"
        assert openai_style.headers["x-content-type-options"] == "nosniff"
        anthropic_style = httpx.post(server.url + "/v1/messages", json={"model": "m", "max_tokens": 1, "messages": []},
                                     headers={"x-api-key": "gh_a-key-that-cannot-be-checked-000"})  # fmt: skip
        assert anthropic_style.status_code == 500 and anthropic_style.json()["type"] == "error"
        assert "Traceback" not in anthropic_style.text and "<html" not in anthropic_style.text.lower()
    finally:
        stop_gateway(server)
