"""The docs stay true: every Python block parses, every example imports, every page is linked."""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py"))


def _blocks() -> list[tuple[str, int, str]]:
    found = []
    for page in DOCS:
        text = page.read_text()
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append((page.name, line, match.group(1)))
    return found


@pytest.mark.parametrize(("page", "line", "code"), _blocks(), ids=lambda v: str(v)[:30])
def test_python_blocks_parse(page: str, line: int, code: str) -> None:
    try:
        ast.parse(code)
    except SyntaxError as exc:
        pytest.fail(f"{page}:{line + (exc.lineno or 0)}: {exc.msg}")


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
