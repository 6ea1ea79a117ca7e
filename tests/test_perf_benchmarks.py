"""The full-stack benchmarks measure working stacks, and fail loudly otherwise.

No timing is asserted here: these tests prove that the stacks the benchmarks
time do the whole job (so a broken stack is never measured), that the sanity
check catches a stack that does not, and that the throughput runner's server
plumbing and its "wrk is missing" path work.
"""

from __future__ import annotations

import json
from typing import Any

import brotli
import pytest

from benchmarks import bench_stack, stack_apps, throughput

for _module in ("asgi_kit.compression", "asgi_kit.logging", "asgi_kit.proxy"):
    pytest.importorskip(_module)


@pytest.fixture(scope="module")
def scope() -> dict[str, Any]:
    return bench_stack.stack_scope(stack_apps.cookie_header())


@pytest.fixture(scope="module")
def bare() -> Any:
    return stack_apps.bare_app()


def test_asgi_kit_stack_does_the_whole_job_with_and_without_the_sdk(
    bare: Any, scope: dict[str, Any]
) -> None:
    provider, spans = stack_apps.sdk_provider()
    bench_stack.sanity_check(stack_apps.build_asgi_kit(bare, provider, spans), "asgi_kit", scope)
    assert spans.ended == 1
    assert spans.last.attributes["http.route"] == "/items/{item_id}"
    assert spans.last.attributes["client.address"] == stack_apps.FORWARDED_FOR
    bench_stack.sanity_check(stack_apps.build_asgi_kit(bare), "asgi_kit", scope)


def test_anchor_stack_does_the_same_job(bare: Any, scope: dict[str, Any]) -> None:
    for module in ("slowapi", "brotli_asgi", "starlette_exporter", "asgi_correlation_id"):
        pytest.importorskip(module)
    pytest.importorskip("opentelemetry.instrumentation.asgi")
    provider, spans = stack_apps.sdk_provider()
    bench_stack.sanity_check(stack_apps.build_anchor(bare, provider, spans), "anchor", scope)
    assert spans.ended == 1


@pytest.mark.parametrize("layer", ["compression", "sessions", "proxy", "ratelimit", "metrics"])
def test_sanity_check_rejects_a_stack_missing_a_layer(
    bare: Any, scope: dict[str, Any], layer: str
) -> None:
    stack = stack_apps.build_asgi_kit(bare, without=frozenset({layer}))
    with pytest.raises(AssertionError):
        bench_stack.sanity_check(stack, "asgi_kit", scope)


def test_unknown_layer_names_are_refused(bare: Any) -> None:
    with pytest.raises(ValueError, match="compresion"):
        stack_apps.build_asgi_kit(bare, without=frozenset({"compresion"}))


def test_scenarios_are_built_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench_stack, "WARM_UP", 50)  # the real 3000 only slows the test
    scenarios = bench_stack.scenarios()
    assert [s.goal for s in scenarios] == [0.5, 0.5]
    assert all("anchor stack" in s.anchors for s in scenarios)


def test_throughput_without_wrk_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(throughput.shutil, "which", lambda name: None)
    assert throughput.main(["--duration", "1"]) == 2
    assert "apt-get install wrk" in capsys.readouterr().err


def test_throughput_parses_wrk_latencies() -> None:
    assert throughput._ms("812.00us") == pytest.approx(0.812)
    assert throughput._ms("3.25ms") == pytest.approx(3.25)
    assert throughput._ms("1.50s") == pytest.approx(1500.0)


WRK_OUTPUT = """\
Running 8s test @ http://127.0.0.1:40123/items/42
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    13.21ms    4.02ms  61.50ms   77.50%
    Req/Sec     2.43k   310.12     2.81k    50%
  Latency Distribution
     50%   12.40ms
     75%   14.02ms
     90%   17.11ms
     99%    1.02s
  19410 requests in 8.00s, 9.81MB read
Requests/sec:   2426.04
Transfer/sec:      1.23MB
"""


def test_throughput_parses_wrk_output_lines_not_columns() -> None:
    rps, p50, p99 = throughput.parse_wrk(WRK_OUTPUT)
    assert rps == pytest.approx(2426.04)
    assert p50 == pytest.approx(12.40)
    assert p99 == pytest.approx(1020.0)


def test_throughput_server_serves_the_checked_stack_over_a_socket() -> None:
    server = throughput.Server("asgi_kit stack", "asgi_kit_stack")
    headers = throughput.request_headers()
    server.start()
    try:
        server.wait_ready(headers)  # runs Server.check on a real response
        status, response_headers, body = server.get(headers)
        assert status == 200
        assert json.loads(brotli.decompress(body))["owner"] == "ann"
        assert response_headers["vary"].lower().count("origin") == 1
        with pytest.raises(AssertionError):
            server.check(*server.get({"Accept-Encoding": "identity"}))
    finally:
        server.stop()
    assert server.proc is not None and server.proc.returncode is not None


def test_profile_stack_reports_every_layer(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks import profile_stack

    out = tmp_path / "profile.md"
    args = ["--requests", "20", "--rounds", "1", "--top", "3", "--profile-requests", "100"]
    args += ["--out", str(out)]
    assert profile_stack.main(args) == 0
    text = out.read_text()
    for layer in stack_apps.LAYERS:
        assert f"| {layer} |" in text
    assert "asgi_kit/" in text and "calls per request" in text
    assert text.count("| `") == 3  # --top
    assert capsys.readouterr().out.strip() == text.strip()
