"""The guard benchmarks measure what they say: every candidate answers as labelled."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import bench_conditional, bench_limits

from ._support.asgi import call_http


async def _answers(scenario: Any) -> dict[str, Any]:
    candidates = {"asgi_kit": scenario.ours, "bare": scenario.bare}
    candidates.update({k: v for k, v in scenario.anchors.items() if not isinstance(v, str)})
    out = {}
    for label, app in candidates.items():
        scope = dict(scenario.scope, headers=list(scenario.scope["headers"]))
        out[label] = await call_http(app, scope=scope, body=scenario.body)
    return out


@pytest.mark.parametrize("scenario", bench_conditional.scenarios(), ids=lambda s: s.name)
async def test_conditional_scenarios(scenario: Any) -> None:
    answers = await _answers(scenario)
    expected = 304 if "304" in scenario.name else 200
    for label, response in answers.items():
        if label == "bare":
            assert response.status == 200
        else:
            assert response.status == expected, label
    if expected == 200:
        assert answers["asgi_kit"].header("etag")


@pytest.mark.parametrize("scenario", bench_limits.scenarios(), ids=lambda s: s.name)
async def test_limits_scenarios_trigger_no_limit(scenario: Any) -> None:
    for label, response in (await _answers(scenario)).items():
        assert response.status == 200, label
