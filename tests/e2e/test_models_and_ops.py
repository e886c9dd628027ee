"""Model lists in both shapes, and the operational endpoints (health, readiness, metrics, docs)."""

import anthropic
import httpx
import openai


def test_anthropic_sdk_lists_models_in_anthropic_shape(world):
    page = world.anthropic().models.list()
    ids = [m.id for m in page.data]
    assert "gw-anthropic" in ids and "gw-openai" in ids
    assert "claude-*" not in ids  # patterns route requests but are not model names
    assert all(m.type == "model" and m.created_at for m in page.data)
    one = world.anthropic().models.retrieve("gw-anthropic")
    assert one.display_name == "Fake Claude"


def test_openai_sdk_lists_models_in_openai_shape(world):
    models = list(world.openai().models.list())
    assert {"gw-anthropic", "gw-openai"} <= {m.id for m in models}
    assert all(m.object == "model" for m in models)
    assert world.openai().models.retrieve("gw-openai").id == "gw-openai"


def test_unknown_model_retrieval_is_404_in_each_shape(world):
    try:
        world.anthropic().models.retrieve("nope")
    except anthropic.NotFoundError as err:
        assert err.body["error"]["type"] == "not_found_error"
    else:
        raise AssertionError("expected 404")
    try:
        world.openai().models.retrieve("nope")
    except openai.NotFoundError as err:
        assert err.status_code == 404
    else:
        raise AssertionError("expected 404")


def test_health_and_head_probe_need_no_key(world):
    assert httpx.get(world.url + "/health").json() == {"status": "ok"}
    assert httpx.head(world.url + "/").status_code == 200


def test_ready_checks_the_database(world):
    response = httpx.get(world.url + "/ready")
    assert response.status_code == 200 and response.json()["checks"]["database"] is True


def test_metrics_count_requests(world):
    world.openai().chat.completions.create(model="gw-openai", messages=[{"role": "user", "content": "SAY: m"}])
    text = httpx.get(world.url + "/metrics").text
    assert "gateway_requests_total" in text and 'model="gw-openai"' in text


def test_openapi_docs_are_served(world):
    assert httpx.get(world.url + "/docs").status_code == 200
    schema = httpx.get(world.url + "/openapi.json").json()
    assert "/v1/messages" in schema["paths"] and "/v1/chat/completions" in schema["paths"]


def test_unknown_path_is_json_not_html(world):
    response = httpx.get(world.url + "/v2/nothing")
    assert response.status_code == 404 and response.headers["content-type"].startswith("application/json")


def test_non_streamed_api_responses_carry_a_content_length(world):
    response = httpx.post(
        world.url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {world.keys['alpha']}"},
        json={"model": "gw-openai", "messages": [{"role": "user", "content": "SAY: sized"}]},
    )
    assert response.headers["content-length"] == str(len(response.content))
    assert "transfer-encoding" not in response.headers
