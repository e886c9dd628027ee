"""The token-reduction layers and the response cache for OpenAI Responses callers, on Codex's captured requests
(tests/fixtures/codex) and small hand-made ones: where the text is, what each layer changes, the cache key, and
a cached Response object given again whole and as the SSE stream the openai SDK's accumulator reads."""

import copy
import json
from pathlib import Path

import openai
import orjson
import pytest
from openai._models import construct_type_unchecked
from openai.lib.streaming.responses import ResponseStreamState
from openai.types.responses import ResponseStreamEvent

from accounts.models import Optimization
from proxy.canonical import TargetOptions
from proxy.formats import responses as responses_format
from proxy.formats.anthropic.upstream_request import render_request
from proxy.formats.sse import SSEParser
from proxy.optimize import cache, transforms
from proxy.optimize.transforms import shape
from proxy.optimize.transforms.shape import SYSTEM, TOOL_RESULT, USER
from tests.fakes.upstream import strict

CODEX = Path(__file__).resolve().parent.parent / "fixtures" / "codex" / "requests"
ALL = dict(cache_breakpoints=True, stable_prefix=True, strip_boilerplate=True, dedupe_tool_results=True,
           cap_system_chars=50_000, cap_message_chars=50_000, cap_tool_result_chars=50_000,
           prune_max_tokens=1_000_000, diff_first=True)  # fmt: skip
BIG = "def f():\n    return 1\n" * 40  # over dedupe's MIN_CHARS


def codex(name: str) -> dict:
    return json.loads((CODEX / f"{name}.json").read_text())["body"]


def kinds(body: dict) -> list[tuple]:
    return [(kind, i, tool) for kind, i, _holder, _key, tool in shape.slots(body, "responses")]


def assistant_side(body: dict) -> list[bytes]:
    side = ("function_call", "custom_tool_call", "reasoning")
    return [orjson.dumps(item) for item in body["input"] if item.get("type") in side or item.get("role") == "assistant"]


def conversation(*outputs: str, turns: int = 1) -> dict:
    """Codex's shape: a developer prompt, then per turn a user prompt, a reasoning item, calls and their outputs."""
    items = [{"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are Codex."}]}]
    for t in range(turns):
        items.append({"type": "message", "role": "user", "content": [{"type": "input_text", "text": f"task {t}"}]})
        items.append({"type": "reasoning", "id": f"rs_{t}", "summary": [], "encrypted_content": f"gAAAA-opaque-{t}"})
        for j, out in enumerate(outputs):
            items.append({"type": "function_call", "call_id": f"c{t}_{j}", "name": "exec_command", "arguments": "{}"})
            items.append({"type": "function_call_output", "call_id": f"c{t}_{j}", "output": out})
        items.append({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": f"ok {t}"}]})
    items.append({"type": "message", "role": "user", "content": "and now?"})
    return {"model": "m", "input": items, "store": False}


# --- where the text is ------------------------------------------------------------------------------------


def test_slots_offer_instructions_developer_user_and_tool_outputs_never_calls_or_reasoning():
    body = codex("shell-2")
    found = kinds(body)
    assert [k for k, _i, _t in found] == [SYSTEM] * 4 + [USER, USER, TOOL_RESULT]  # developer 1 has three parts
    assert found[-1] == (TOOL_RESULT, 5, "call_fake_1")  # the function_call_output, with its call_id
    lite = codex("lite-2")  # custom_tool_call_output as input_text parts; additional_tools is not text
    assert [(k, t) for k, _i, t in kinds(lite) if k == TOOL_RESULT] == [(TOOL_RESULT, "call_fake_1")] * 2
    assert 0 not in [i for _k, i, _t in kinds(lite)]  # item 0 is additional_tools
    assert kinds({"model": "m", "input": "hi", "instructions": "be brief"}) == [(SYSTEM, -1, None), (USER, 0, None)]


def test_text_size_counts_input_instructions_and_tools():
    body = codex("shell-2")
    size = shape.text_size(body, "responses")
    assert size > len(orjson.dumps(body["input"])) + len(orjson.dumps(body["tools"]))  # the quotes of "" too
    body["instructions"] = "x" * 1000
    assert shape.text_size(body, "responses") == size + 1000


# --- each layer -------------------------------------------------------------------------------------------


def test_dedupe_caps_and_boilerplate_edit_tool_outputs_only():
    body = conversation(BIG, "short\n<system-reminder>\nmalware?\n</system-reminder>", BIG)
    body["input"][4]["output"] = [{"type": "input_text", "text": "as parts"}, {"type": "input_text", "text": BIG}]
    before = copy.deepcopy(body)
    opt = Optimization(dedupe_tool_results=True, strip_boilerplate=True, cap_tool_result_chars=300)
    names, saved = transforms.reduce(body, "responses", opt, "anthropic")
    assert names == ["boilerplate", "dedupe", "caps"] and saved > 0
    outputs = [i["output"] for i in body["input"] if i["type"] == "function_call_output"]
    assert outputs[0][1]["text"].startswith("def f()") and "characters cut by the gateway" in outputs[0][1]["text"]
    assert outputs[1] == "short"
    assert outputs[2] == f"[identical to the result of tool call c0_0 above; {len(BIG)} characters not repeated]"
    assert assistant_side(body) == assistant_side(before) and strict.responses_problems(body) == []
    responses_format.parse_request(body)


def test_caps_cut_instructions_and_developer_text():
    body = codex("shell-2")
    body["instructions"] = "Be brief. " * 100
    transforms.reduce(body, "responses", Optimization(cap_system_chars=200), "openai")
    assert len(body["instructions"]) == 200
    developer = [part["text"] for item in body["input"][:2] for part in item["content"]]
    assert max(map(len, developer)) == 200 and body["input"][2:] == codex("shell-2")["input"][2:]


def test_prune_cuts_at_a_human_turn_and_keeps_calls_reasoning_and_the_developer_prompt():
    body = conversation("y" * 3000, turns=4)
    before = copy.deepcopy(body)
    names, saved = transforms.reduce(body, "responses", Optimization(prune_max_tokens=1500), "openai")
    assert names == ["prune"] and saved > 0
    assert body["input"][0] == before["input"][0]  # the developer prompt
    first = body["input"][1]
    assert first["role"] == "user" and first["content"][0]["type"] == "input_text"
    assert first["content"][0]["text"].startswith("[gateway: ") and first["content"][1:] == [{"type": "input_text", "text": "task 3"}]
    assert assistant_side(body) == [s for s in assistant_side(before) if s in assistant_side(body)]
    assert len(assistant_side(body)) == 3 and strict.responses_problems(body) == []  # turn 3's reasoning, call, reply


def test_prune_never_cuts_between_a_call_and_its_output():
    """A user message that arrives while a call is still open is no place to cut."""
    items = [
        {"type": "message", "role": "user", "content": "first " + "z" * 4000},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "message", "role": "user", "content": "meanwhile"},
        {"type": "function_call_output", "call_id": "c1", "output": "w" * 4000},
        {"type": "message", "role": "user", "content": "last"},
    ]
    body = {"model": "m", "input": copy.deepcopy(items)}
    transforms.reduce(body, "responses", Optimization(prune_max_tokens=100), "openai")
    assert [i.get("content", i.get("type")) for i in body["input"]] == [
        "[gateway: 4 earlier messages dropped to keep the context under 100 tokens]\n\nlast"
    ]
    assert strict.responses_problems(body) == []


def test_diff_first_goes_after_the_clients_own_system_text():
    opt = Optimization(diff_first=True)
    text = opt.diff_first_text
    body = codex("shell-2")  # no instructions: after Codex's two developer messages
    transforms.reduce(body, "responses", opt, "openai")
    assert body["input"][2] == {"type": "message", "role": "developer", "content": text} and "instructions" not in body
    assert body["input"][3]["role"] == "user"
    lite = codex("lite-2")  # additional_tools and four developer messages lead
    transforms.reduce(lite, "responses", opt, "anthropic")
    assert lite["input"][5]["content"] == text and lite["input"][6]["role"] == "user"
    with_instructions = {"model": "m", "instructions": "Be brief.", "input": [{"role": "user", "content": "hi"}]}
    transforms.reduce(with_instructions, "responses", opt, "openai")
    assert with_instructions["instructions"] == f"Be brief.\n\n{text}" and len(with_instructions["input"]) == 1
    plain = {"model": "m", "input": "hi"}
    transforms.reduce(plain, "responses", opt, "openai")
    assert plain == {"model": "m", "input": "hi", "instructions": text}


def test_stable_prefix_leaves_responses_alone_and_breakpoints_only_mark_for_anthropic():
    """Codex sends no volatile line; breakpoints are for Anthropic upstreams only."""
    body = codex("shell-2")
    before = copy.deepcopy(body)
    assert transforms.reduce(body, "responses", Optimization(cache_breakpoints=True, stable_prefix=True), "openai") == ([], 0)
    assert body == before


def test_breakpoints_reach_the_anthropic_request_through_the_translation():
    body = codex("shell-2")  # two developer messages, the environment, the prompt, a call and its output
    names, _ = transforms.reduce(body, "responses", Optimization(cache_breakpoints=True), "anthropic")
    assert names == ["breakpoints"]
    marks = [str(i.get("role") or i["type"]) for i in body["input"] if "cache_control" in str(i)]
    assert marks == ["developer", "user", "user", "function_call_output"]  # the last leading system item + 3
    (output,) = [i for i in body["input"] if i["type"] == "function_call_output"]
    assert output["output"][0]["type"] == "input_text" and output["output"][0]["cache_control"] == {"type": "ephemeral"}
    again = copy.deepcopy(body)
    assert transforms.reduce(again, "responses", Optimization(cache_breakpoints=True), "anthropic") == ([], 0)
    request = responses_format.parse_request(body)
    wire = render_request(request, TargetOptions("claude"))
    assert wire["system"][-1]["cache_control"] == {"type": "ephemeral"}
    blocks = [b for m in wire["messages"] for b in m["content"] if isinstance(m["content"], list)]
    nested = [p for b in blocks if b.get("type") == "tool_result" for p in b.get("content") or []]
    assert sum("cache_control" in b for b in blocks + nested) == 3


def test_every_layer_on_codexs_requests_keeps_them_valid():
    for name in ("shell-2", "lite-2", "resume-2"):
        body = codex(name)
        before = copy.deepcopy(body)
        names, _ = transforms.reduce(body, "responses", Optimization(**ALL), "anthropic")
        assert "diff_first" in names
        assert assistant_side(body) == assistant_side(before) and strict.responses_problems(body) == []
        responses_format.parse_request(body)


@pytest.mark.parametrize("body", [
    {"model": "m", "input": {"not": "a list"}, "instructions": ["x"]},
    {"model": "m", "input": [1, None, "x", {"type": ["odd"]}, {"type": "function_call", "call_id": ["unhashable"]},
                             {"type": "message", "role": "user", "content": [None, {"type": "input_text", "text": 5}]},
                             {"type": "function_call_output", "call_id": {"a": 1}, "output": {"x": 1}}]},
    {"model": "m", "input": [], "tools": "nope"},
    {"model": "m"},
])  # fmt: skip
def test_malformed_bodies_never_raise(body):
    opt = Optimization(**{**ALL, "prune_max_tokens": 1, "cap_system_chars": 1, "cap_message_chars": 1})
    transforms.reduce(body, "responses", opt, "anthropic")  # the parser answers the caller's 400 later


# --- the response cache -----------------------------------------------------------------------------------


def test_cache_key_ignores_codexs_per_turn_fields_and_never_keys_a_follow_up():
    body = {**codex("shell-2"), "temperature": 0}
    key = cache.cache_key(1, "responses", "a", body, False)
    other = {**body, "client_metadata": {"turn_id": "another"}, "prompt_cache_key": "x", "store": True, "stream": False}
    assert key is not None and cache.cache_key(1, "responses", "a", other, False) == key
    assert cache.cache_key(1, "responses", "a", {**body, "include": []}, False) != key  # changes the answer
    assert cache.cache_key(1, "responses", "a", {**body, "previous_response_id": "resp_1"}, True) is None


STORED = {
    "id": "resp_old", "object": "response", "created_at": 1, "status": "completed", "error": None,
    "incomplete_details": None, "instructions": None, "model": "gw", "parallel_tool_calls": True,
    "previous_response_id": None, "store": False, "metadata": {"a": "b"}, "user": None, "tools": [],
    "tool_choice": "auto", "temperature": 0.0, "top_p": 1.0, "text": {"format": {"type": "text"}},
    "output": [
        {"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "think"}],
         "encrypted_content": "gAAAA-openai-own"},
        {"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
         "content": [{"type": "output_text", "text": "hello", "annotations": [], "logprobs": []}]},
        {"id": "fc_1", "type": "function_call", "status": "completed", "call_id": "call_1", "name": "f",
         "arguments": "{\"a\":1}"},
        {"id": "ctc_1", "type": "custom_tool_call", "status": "completed", "call_id": "call_2", "name": "apply_patch",
         "input": "*** Begin Patch", "namespace": "functions"},
        {"id": "ws_1", "type": "web_search_call", "status": "completed", "action": {"type": "search", "query": "q"}},
    ],
    "usage": {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 5,
              "output_tokens_details": {"reasoning_tokens": 2}, "total_tokens": 15},
}  # fmt: skip


def test_a_hit_is_the_stored_object_under_a_new_id_with_this_requests_echo():
    answer = responses_format.replay.answer(STORED, {"store": True, "user": "u2"})
    assert answer["id"].startswith("resp_") and answer["id"] != "resp_old" and answer["created_at"] > 1
    assert (answer["store"], answer["metadata"], answer["user"]) == (True, {}, "u2")
    assert answer["output"] == STORED["output"]
    assert "prompt_cache_key" not in answer  # no key the stored object did not have


def test_a_hit_replays_as_the_stream_the_sdk_accumulates():
    response = responses_format.replay.answer(STORED, {})
    events = [json.loads(e.data) for e in SSEParser().feed(responses_format.replay.events(response))]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events][:2] == ["response.created", "response.in_progress"]
    assert events[-1] == {"type": "response.completed", "response": response, "sequence_number": len(events) - 1}
    added = [e["item"] for e in events if e["type"] == "response.output_item.added"]
    assert "encrypted_content" not in added[0] and added[1]["content"] == [] and added[2]["arguments"] == ""
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert done == STORED["output"]  # byte-identical items: OpenAI's encrypted reasoning included
    state = ResponseStreamState(input_tools=openai.omit, text_format=openai.omit)
    for event in events:
        state.handle_event(construct_type_unchecked(type_=ResponseStreamEvent, value=event))
    final = state._completed_response
    assert final.output_text == "hello" and final.id == response["id"]
    assert [item.type for item in final.output] == [i["type"] for i in STORED["output"]]
    assert {"response.output_text.delta", "response.function_call_arguments.delta", "response.custom_tool_call_input.delta",
            "response.reasoning_summary_text.delta"} <= {e["type"] for e in events}  # fmt: skip


def test_an_incomplete_answer_replays_with_its_own_terminal_event():
    response = {**STORED, "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}
    events = [json.loads(e.data) for e in SSEParser().feed(responses_format.replay.events(response))]
    assert events[-1]["type"] == "response.incomplete" and events[0]["response"]["incomplete_details"] is None


def test_dedupe_sees_through_codexs_per_call_chunk_id():
    """Codex's exec_command output starts with a random Chunk ID: the same file read twice still matches."""
    text = "".join(f"line {n}: some code here\n" for n in range(40))

    def output(call: str, chunk: str, code: int = 0) -> dict:
        head = (f"Chunk ID: {chunk}\nWall time: 0.0011 seconds\nProcess exited with code {code}\n"
                "Original token count: 99\nOutput:\n")
        return {"type": "function_call_output", "call_id": call, "output": head + text}

    calls = [{"type": "function_call", "call_id": c, "name": "exec_command", "arguments": "{}"} for c in ("c1", "c2")]
    body = {"model": "m", "input": [{"role": "user", "content": "read it twice"}, calls[0], output("c1", "0fe72d"),
                                    calls[1], output("c2", "a91b03", code=1)]}  # fmt: skip
    names, saved = transforms.reduce(body, "responses", Optimization(dedupe_tool_results=True), "openai")
    assert names == ["dedupe"] and saved > 200
    first, second = body["input"][2]["output"], body["input"][4]["output"]
    assert first.endswith(text)  # the first read stays whole
    assert second.startswith("Chunk ID: a91b03\n") and "exited with code 1" in second  # its own header stays
    assert second.endswith(f"[identical to the result of tool call c1 above; {len(text)} characters not repeated]")
