"""The docs stay true: every Python block of README.md and docs/*.md runs as written.

Every page is picked up automatically, including new ones.  Each ```` ```python ````
block is executed in a fresh namespace, the way a reader pastes it into a
file of their own, with these fixtures (and nothing else) provided:

* ``app``, ``my_asgi_app`` and ``raw_app``: the reader's own ASGI app, a
  small raw app that answers ``200 ok`` (the pages write
  ``app = Middleware(app, ...)``);
* a package ``myproject`` whose ``app`` is that app, and any module a
  block on the same page defines with a first line ``# myproject/x.py``
  (importable for the later blocks of that page, as in the reader's project);
* every variable a block reads with ``os.environ["NAME"]`` is set;
* the working directory is a fresh project directory holding the files the
  blocks read by relative path (``static/app.v1.js``);
* ``redis://localhost...`` URLs and ``REDIS_URL`` point at the test suite's
  own ``redis-server``;
* Django is configured (and its settings overridden with what the block
  defines) when a block uses Django;
* an OTLP/HTTP collector on a loopback port (``OTEL_EXPORTER_OTLP_ENDPOINT``),
  so an exporter set up by a block has somewhere to send its spans.

Then every ASGI app the block defines (``app``, ``application``) is called in
process with one ``GET /`` and must answer without a 5xx, and a block that
defines Django settings (``MIDDLEWARE``, ``ASGI_KIT``) gets one request
through Django's test client with those settings.  Global state a block
changes (structlog's configuration, the root logger's handlers) is restored
afterwards, and a global tracer provider it installs is kept local to it.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import types
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import structlog

from ._support.asgi import call_http
from ._support.logs import RecordingLogger

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
MODULE_HEADER = re.compile(r"#\s*(myproject(?:/\w+)*)\.py\s*$")
ENVIRON = re.compile(r"""os\.environ(?:\.get\(|\[)["']([A-Z0-9_]+)["']""")
REDIS_LOCAL = re.compile(r"redis://localhost(?::\d+)?(?:/\d+)?")
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py"))
ADAPTERS = "asgi_kit.contrib.django."


@dataclass(frozen=True)
class Block:
    page: str
    line: int  # of the first code line
    code: str

    @property
    def module(self) -> str | None:
        """``myproject.x`` when the block starts with ``# myproject/x.py``."""
        first = self.code.partition("\n")[0]
        found = MODULE_HEADER.fullmatch(first.strip())
        return found.group(1).replace("/", ".") if found else None

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def _blocks() -> list[Block]:
    found = []
    for page in DOCS:
        text = page.read_text()
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 2
            found.append(Block(page.relative_to(ROOT).as_posix(), line, match.group(1)))
    return found


BLOCKS = _blocks()


async def your_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The reader's own app in the snippets: ``200 ok``, a WebSocket echo, lifespan."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["type"] == "websocket":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close"})
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": b"ok"})


PROVIDED = {"app": your_app, "my_asgi_app": your_app, "raw_app": your_app}


# --------------------------------------------------------------------------- fixtures


class _Collector(BaseHTTPRequestHandler):
    paths: list[str] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.paths.append(self.path)
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def otlp_collector() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def restore_globals(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Undo what a snippet configures process-wide (logging set-ups do).

    The global tracer provider can be set only once per process, so a block
    that sets one gets it recorded instead (and shut down afterwards).
    """
    from opentelemetry import trace

    installed: list[Any] = []
    monkeypatch.setattr(trace, "set_tracer_provider", installed.append)
    config = structlog.get_config()
    was_configured = structlog.is_configured()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    # Blocks set environment variables (DJANGO_SETTINGS_MODULE): later tests
    # and the servers they start must not inherit them.
    environ = dict(os.environ)
    # Blocks register metrics on prometheus_client's global REGISTRY, where a
    # block with other buckets would clash with earlier ones. The registry
    # offers no public listing, so its private map is read here (tests only).
    from prometheus_client import REGISTRY

    from asgi_kit.metrics import middleware as metrics_middleware

    # Each block sees a fresh global registry, as in the reader's new process:
    # what earlier tests registered there is set aside and put back after.
    collectors = list(REGISTRY._collector_to_names)
    for collector in collectors:
        REGISTRY.unregister(collector)
    shared = metrics_middleware._SHARED.pop(REGISTRY, None)
    # dictConfig (Django's LOGGING) disables and reconfigures named loggers too.
    loggers = {
        name: (lg.level, lg.propagate, lg.disabled, lg.handlers[:])
        for name, lg in logging.Logger.manager.loggerDict.items()
        if isinstance(lg, logging.Logger)
    }
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(environ)
        for collector in list(REGISTRY._collector_to_names):
            REGISTRY.unregister(collector)
        for collector in collectors:
            REGISTRY.register(collector)
        # ...and MetricsMiddleware's record of what it registered there.
        metrics_middleware._SHARED.pop(REGISTRY, None)
        if shared is not None:
            metrics_middleware._SHARED[REGISTRY] = shared
        for name, lg in list(logging.Logger.manager.loggerDict.items()):
            if not isinstance(lg, logging.Logger):
                continue
            if name in loggers:
                lg.level, lg.propagate, lg.disabled, lg.handlers[:] = loggers[name]
            else:
                lg.setLevel(logging.NOTSET)
                lg.propagate, lg.disabled, lg.handlers[:] = True, False, []
        if was_configured:
            structlog.configure(**config)
        else:  # configure() would leave structlog "configured", which code checks
            structlog.reset_defaults()
        root.handlers[:] = handlers
        root.setLevel(level)
        for provider in installed:
            getattr(provider, "shutdown", lambda: None)()


def _uses_django(code: str) -> bool:
    return "django" in code or re.search(r"^(MIDDLEWARE|ASGI_KIT)\s*=", code, re.M) is not None


def _execute(block: Block, code: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": f"docs_{block.line}", **PROVIDED}
    # Padding keeps tracebacks on the page's own line numbers.
    exec(compile("\n" * (block.line - 1) + code, block.page, "exec"), namespace)
    return namespace


def _install_project(monkeypatch: pytest.MonkeyPatch, block: Block) -> None:
    """``myproject`` and the modules earlier blocks of the page define."""
    package = types.ModuleType("myproject")
    package.__path__ = []
    package.app = your_app  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "myproject", package)
    for earlier in BLOCKS:
        if earlier.page != block.page or earlier.line >= block.line or earlier.module is None:
            continue
        module = types.ModuleType(earlier.module)
        exec(compile(earlier.code, f"{earlier.page}:{earlier.line}", "exec"), module.__dict__)
        monkeypatch.setitem(sys.modules, earlier.module, module)
        setattr(package, earlier.module.rpartition(".")[2], module)


def _django_request(namespace: dict[str, Any]) -> None:
    from django.test import Client, override_settings

    configured = namespace.get("ASGI_KIT", {})
    middleware = namespace.get("MIDDLEWARE")
    if middleware is None:
        middleware = [ADAPTERS + name for name in configured]
    middleware = [m for m in middleware if isinstance(m, str)]  # a literal ``...`` is prose
    with override_settings(
        MIDDLEWARE=middleware, ASGI_KIT=configured, ROOT_URLCONF="tests.apps.docs_django_urls"
    ):
        response = Client(raise_request_exception=False).get("/")
    assert response.status_code < 500, response.content[:500]


@pytest.mark.usefixtures("restore_globals")
@pytest.mark.parametrize("block", BLOCKS, ids=str)
def test_python_block_runs(
    block: Block,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    otlp_collector: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    code = block.code
    try:
        ast.parse(code)
    except SyntaxError as exc:
        pytest.fail(f"{block.page}:{block.line + (exc.lineno or 1) - 1}: {exc.msg}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_collector)
    for name in ENVIRON.findall(code):
        # What a block reads from the environment (secrets) is the reader's to set.
        monkeypatch.setenv(name, f"docs-test-{name.lower()}")
    if "redis://" in code or "REDIS_URL" in code:
        redis_url = request.getfixturevalue("redis_url")
        code = REDIS_LOCAL.sub(redis_url, code)
        monkeypatch.setenv("REDIS_URL", redis_url)
    if _uses_django(code):
        from tests.apps.django_project import configure

        configure()
    _install_project(monkeypatch, block)
    # The reader's project directory: files a block reads by relative path.
    project = tmp_path_factory.mktemp("project")
    (project / "static").mkdir()
    (project / "static" / "app.v1.js").write_text("export const version = 1;\n" * 200)
    monkeypatch.chdir(project)
    # docs/development.md's walk-through module, as a reader's own file.
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "docs" / "walkthrough"))

    namespace = _execute(block, code)

    apps = [
        namespace[name]
        for name in ("app", "application")
        if callable(namespace.get(name)) and namespace[name] is not your_app
    ]
    for app in apps:
        response = asyncio.run(call_http(app, "GET", "/"))
        assert response.status < 500, (str(block), response.status, response.body[:500])
    if "MIDDLEWARE" in namespace or "ASGI_KIT" in namespace:
        _django_request(namespace)
    sent_before = len(_Collector.paths)
    for value in list(namespace.values()):
        shutdown = getattr(value, "shutdown", None)
        if type(value).__name__ == "TracerProvider" and callable(shutdown):
            shutdown()  # flushes a BatchSpanProcessor into the collector
    if "OTLPSpanExporter(" in code and apps:
        # The request's span reached the exporter the block set up.
        assert "/v1/traces" in _Collector.paths[sent_before:]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_import(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each example builds its app at import time: options are valid and names exist."""
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    monkeypatch.delenv("REDIS_URL", raising=False)
    spec = importlib.util.spec_from_file_location(f"_example_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)


def test_every_page_is_in_the_site_nav_and_the_index() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    index = (ROOT / "docs" / "index.md").read_text()
    for page in (ROOT / "docs").glob("*.md"):
        if page.name == "index.md":
            continue
        assert page.name in nav, f"{page.name} is missing from mkdocs.yml's nav"
        assert f"({page.name})" in index, f"{page.name} is not linked from docs/index.md"


# --------------------------------------------------------------------------- Django page


def _page_block(page: str, defines: str) -> Block:
    return next(b for b in BLOCKS if b.page == page and re.search(rf"^{defines}\s*=", b.code, re.M))


def _asgi_kit_order(middleware: list[Any]) -> list[str]:
    return [m.removeprefix(ADAPTERS) for m in middleware if str(m).startswith(ADAPTERS)]


def test_django_page_lists_the_middleware_in_the_stack_order() -> None:
    listed = (ROOT / "docs" / "stack.md").read_text()
    stack_order = re.findall(r"^\d+\. \*\*`(\w+)`\*\*", listed, re.M)
    assert len(stack_order) == 9
    for page in ("docs/django.md", "docs/stack.md"):
        block = _page_block(page, "MIDDLEWARE")
        with pytest.MonkeyPatch.context() as mp:
            for name in ENVIRON.findall(block.code):
                mp.setenv(name, "x")
            namespace = _execute(block, block.code)
        assert _asgi_kit_order(namespace["MIDDLEWARE"]) == stack_order, page


@pytest.mark.parametrize("order", ["documented", "access-log-outside-tracing"])
def test_django_page_settings_log_trace_ids_and_limit_login(
    order: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The documented order puts the span around the access log, so its events carry the ids."""
    from django.test import Client, override_settings
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from tests.apps.django_project import configure

    configure()
    block = _page_block("docs/django.md", "MIDDLEWARE")
    monkeypatch.setenv("SESSION_SECRET_KEY", "docs-test")
    namespace = _execute(block, block.code)
    middleware = [m for m in namespace["MIDDLEWARE"] if isinstance(m, str)]
    if order != "documented":
        tracing, access = ADAPTERS + "TracingMiddleware", ADAPTERS + "AccessLogMiddleware"
        i, j = middleware.index(tracing), middleware.index(access)
        middleware[i], middleware[j] = access, tracing
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    log = RecordingLogger()
    configured = {
        **namespace["ASGI_KIT"],
        "TracingMiddleware": {"tracer_provider": provider},
        "AccessLogMiddleware": {"logger": log},
        # A registry of its own: the page's metrics_path stays as written.
        "MetricsMiddleware": {
            **namespace["ASGI_KIT"]["MetricsMiddleware"],
            "registry": __import__("prometheus_client").CollectorRegistry(),
        },
    }
    with override_settings(
        MIDDLEWARE=middleware, ASGI_KIT=configured, ROOT_URLCONF="tests.apps.docs_django_urls"
    ):
        client = Client()
        statuses = [client.post("/login/").status_code for _ in range(6)]
    # Rule("5/minute", path="/login/", methods={"POST"}) matches Django's URL.
    assert statuses == [200] * 5 + [429]
    spans = {format(s.context.trace_id, "032x") for s in exporter.get_finished_spans()}
    assert len(spans) == 6
    logged = [e.get("trace_id") for e in log.events if e["event"] == "request"]
    assert len(logged) == 6
    if order == "documented":
        assert set(logged) == spans
        assert all(e.get("span_id") for e in log.events)
    else:
        assert logged == [None] * 6


# --------------------------------------------------------------------------- the built site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``mkdocs build --strict``, as ``make docs`` runs it (a warning fails the build)."""
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return out


class _Cells(HTMLParser):
    """The text of every table cell, and of every ``<code>`` inside one."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[str] = []
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("td", "th"):
            self._depth += 1
            self.cells.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th"):
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._depth:
            self.cells[-1] += data


def test_built_site_has_every_page_and_no_escaped_pipes_in_tables(site: Path) -> None:
    for page in (ROOT / "docs").glob("*.md"):
        html = site / ("index.html" if page.stem == "index" else f"{page.stem}/index.html")
        assert html.is_file(), page.name
        parser = _Cells()
        parser.feed(html.read_text())
        # The site's Markdown keeps the backslash of ``\|`` inside code spans.
        bad = [cell.strip() for cell in parser.cells if "\\|" in cell]
        assert not bad, f"{page.name}: literal backslashes in table cells: {bad}"


def test_stack_order_is_a_list_so_class_names_never_wrap_in_a_narrow_column(site: Path) -> None:
    html = (site / "stack" / "index.html").read_text()
    names = re.findall(r"<li><strong><code>(\w+)</code></strong>", html)
    assert len(names) == 9 and len(set(names)) == 9, names


# --------------------------------------------------------------------------- Prometheus configs

YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)
MINIMUM = re.compile(r"Minimum version: Prometheus (\d+)\.(\d+)")
PROMTOOL = shutil.which("promtool")


def _scrape_configs() -> list[tuple[str, tuple[int, int] | None, str]]:
    found = []
    for page in DOCS:
        text = page.read_text()
        for match in YAML_BLOCK.finditer(text):
            if "scrape_configs:" not in match.group(1):
                continue
            stated = list(MINIMUM.finditer(text, 0, match.start()))
            minimum = (int(stated[-1][1]), int(stated[-1][2])) if stated else None
            line = text.count("\n", 0, match.start()) + 2
            found.append((f"{page.name}:{line}", minimum, match.group(1)))
    return found


def _promtool_version() -> tuple[int, int]:
    assert PROMTOOL is not None
    out = subprocess.run([PROMTOOL, "--version"], capture_output=True, text=True, check=True)
    found = re.search(r"version (\d+)\.(\d+)", out.stdout + out.stderr)
    assert found, out
    return int(found[1]), int(found[2])


@pytest.mark.parametrize(("where", "minimum", "config"), _scrape_configs(), ids=lambda v: str(v))
def test_prometheus_scrape_config_passes_promtool(
    where: str, minimum: tuple[int, int] | None, config: str, tmp_path: Path
) -> None:
    """Each scrape config states its minimum Prometheus version, and promtool agrees."""
    assert minimum is not None, f"{where}: say 'Minimum version: Prometheus X.Y' before it"
    if PROMTOOL is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing (Debian: apt-get install prometheus)")
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    path = tmp_path / "prometheus.yml"
    path.write_text(config)
    done = subprocess.run(
        [PROMTOOL, "check", "config", str(path)], capture_output=True, text=True, check=False
    )
    if _promtool_version() >= minimum:
        assert done.returncode == 0, f"{where}: {done.stdout}{done.stderr}"
    else:
        # Older than the stated minimum: the page says it is refused, and it is.
        assert done.returncode != 0, f"{where} works on {_promtool_version()}: lower its minimum"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize("configured", [False, True], ids=["django-default", "page-logging"])
def test_django_page_logging_keeps_429s_and_preflights_to_the_access_log(
    configured: bool,
) -> None:
    import logging.config

    from django.test import Client, override_settings

    from tests.apps.django_project import configure

    configure()
    block = _page_block("docs/django.md", "LOGGING")
    logger = logging.getLogger("django.request")
    saved = (logger.level, logger.handlers[:], logger.propagate, logger.disabled)
    records = _Records()
    try:
        if configured:
            logging.config.dictConfig(_execute(block, block.code)["LOGGING"])
        logger.addHandler(records)
        settings = {
            "MIDDLEWARE": [ADAPTERS + "CORSMiddleware", ADAPTERS + "RateLimitMiddleware"],
            "ASGI_KIT": {
                "CORSMiddleware": {"allow_origins": ["https://app.example"]},
                "RateLimitMiddleware": {"rules": [__import__("asgi_kit").Rule("1/minute")]},
            },
            "ROOT_URLCONF": "tests.apps.docs_django_urls",
        }
        with override_settings(**settings):
            client = Client()
            preflight = {"origin": "https://evil.example", "access-control-request-method": "GET"}
            assert client.options("/", headers=preflight).status_code == 400
            assert [client.get("/").status_code for _ in range(2)] == [200, 429]
    finally:
        logger.removeHandler(records)
        logger.setLevel(saved[0])
        logger.handlers[:] = saved[1]
        logger.propagate, logger.disabled = saved[2], saved[3]
    statuses = sorted(getattr(r, "status_code", 0) for r in records.records)
    assert statuses == ([] if configured else [400, 429])
