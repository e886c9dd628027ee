"""Cost-optimization settings in the config file (`projects[].optimize`): applied, re-applied without change,
reset to defaults when a key goes, refused with the key's path when wrong, and seen by the key snapshot."""

import pytest

from accounts import keys
from accounts.config import ConfigError
from accounts.models import DIFF_FIRST_TEXT, ProjectOptimization
from accounts.services import config_apply

pytestmark = pytest.mark.django_db


def project(**optimize):
    return {"projects": [{"slug": "team", "name": "Team", "optimize": optimize}]}


def test_optimize_settings_apply_and_reach_the_key_snapshot():
    report = config_apply(project(response_cache_ttl=300, response_cache_models=["gw-*"], cache_breakpoints=True,
                                  boilerplate_markers=["<rules> ... </rules>", "# IDE context"],
                                  route_background="gw-haiku", complexity_keywords=["architect", "security"]))  # fmt: skip
    row = ProjectOptimization.objects.get(project__slug="team")
    assert (row.response_cache_ttl, row.response_cache_models, row.cache_breakpoints) == (300, "gw-*", True)
    assert row.boilerplate_markers == "<rules> ... </rules>\n# IDE context" and row.diff_first_text == DIFF_FIRST_TEXT
    assert report.counts["projects"]["created"] == 1
    again = config_apply(project(response_cache_ttl=300, response_cache_models=["gw-*"], cache_breakpoints=True,
                                 boilerplate_markers=["<rules> ... </rules>", "# IDE context"],
                                 route_background="gw-haiku", complexity_keywords=["architect", "security"]))  # fmt: skip
    assert again.counts["projects"]["unchanged"] == 1
    key, _ = keys.key_create(project=row.project, name="k")
    view = keys.key_by_id(key.id).optimize
    assert view.markers == ("<rules> ... </rules>", "# IDE context") and view.keywords == ("architect", "security")
    assert view.response_cache_models == ("gw-*",) and view.route_background == "gw-haiku"


def test_tool_trimming_settings_reach_the_key_snapshot():
    config_apply(project(cap_tool_description_chars=500, drop_tools=["Cron*", "*Worktree"]))
    row = ProjectOptimization.objects.get(project__slug="team")
    assert (row.cap_tool_description_chars, row.drop_tools) == (500, "Cron*, *Worktree")
    key, _ = keys.key_create(project=row.project, name="k")
    view = keys.key_by_id(key.id).optimize
    assert view.drop_tools == ("Cron*", "*Worktree") and view.cap_tool_description_chars == 500 and view.reduces


def test_a_key_left_out_goes_back_to_its_default_and_all_off_means_no_view():
    config_apply(project(response_cache_ttl=60, diff_first=True))
    config_apply(project(response_cache_ttl=60))
    row = ProjectOptimization.objects.get(project__slug="team")
    assert row.diff_first is False
    config_apply(project())
    row.refresh_from_db()
    assert row.response_cache_ttl == 0 and row.view() is None  # the request path pays one `is None`


@pytest.mark.parametrize("optimize, message", [
    ({"cache_breakpoint": True}, "projects[0].optimize.cache_breakpoint: unknown field"),
    ({"response_cache_ttl": "soon"}, "projects[0].optimize.response_cache_ttl: expected a whole number"),
    ({"diff_first": "yes"}, "projects[0].optimize.diff_first: expected true or false"),
    ({"prune_max_tokens": 10}, "projects[0].optimize.prune_max_tokens: Ensure this value is greater than or equal to 1000"),
    ({"cap_tool_description_chars": 20}, "projects[0].optimize.cap_tool_description_chars: Ensure this value is greater than or equal to 100"),
    ({"drop_tools": [3]}, "projects[0].optimize.drop_tools: expected a list of strings"),
])  # fmt: skip
def test_bad_settings_are_refused_with_their_path(optimize, message):
    with pytest.raises(ConfigError) as error:
        config_apply(project(**optimize))
    assert any(p.startswith(message) for p in error.value.problems), error.value.problems
    assert not ProjectOptimization.objects.exists()


def test_a_routes_response_cache_ttl_comes_from_the_config_file_and_reaches_the_snapshot(monkeypatch):
    from proxy import routing
    from proxy.optimize import cache
    from accounts.models import ModelRoute, Optimization

    config = {"providers": [{"name": "up", "kind": "openai", "base_url": "http://127.0.0.1:9/v1",
                             "accounts": [{"name": "a", "api_key": "sk-x"}]}],
              "models": [{"alias": "cached", "response_cache_ttl": 5, "targets": [{"provider": "up", "model": "m"}]},
                         {"alias": "uncached", "response_cache_ttl": 0, "targets": [{"provider": "up", "model": "m"}]},
                         {"alias": "plain", "targets": [{"provider": "up", "model": "m"}]}]}  # fmt: skip
    config_apply(config)
    assert dict(ModelRoute.objects.values_list("alias", "response_cache_ttl")) == {"cached": 5, "uncached": 0, "plain": None}
    monkeypatch.setattr(routing, "close_old_connections", lambda: None)  # it would close this test's transaction
    snap = routing._build()  # the snapshot the request path loads
    on, off = Optimization(response_cache_ttl=60), Optimization()
    assert [cache.ttl(on, snap.exact[a]) for a in ("cached", "uncached", "plain")] == [5, 0, 60]
    assert [cache.ttl(off, snap.exact[a]) for a in ("cached", "uncached", "plain")] == [0, 0, 0]  # the project decides
    assert cache.ttl(Optimization(response_cache_ttl=60, response_cache_models=("gw-*",)), snap.exact["cached"]) == 0
    with pytest.raises(ConfigError) as error:
        config_apply({**config, "models": [{**config["models"][0], "response_cache_ttl": -1}]})
    assert any(p.startswith("models[0].response_cache_ttl") for p in error.value.problems), error.value.problems
