"""The published form: ``python -m build`` makes an sdist and a wheel that install and import.

The README tells users to ``pip install .`` or install from a Git URL; both go
through the same build backend.  The wheel is built from the sdist (what
``python -m build`` does by default), so a file missing from the sdist breaks
the wheel too.  The wheel is then installed, without the checkout on the path,
into a fresh virtualenv whose dependencies come from the test environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "asgi_kit"


def _modules() -> set[str]:
    """Every importable module of the source tree, as ``asgi_kit.x.y``."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found.add(".".join(parts))
    return found


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def test_wheel_holds_every_module_and_the_typing_marker(dist: Path) -> None:
    (wheel,) = dist.glob("asgi_kit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "asgi_kit/py.typed" in names
    for module in _modules():
        path = module.replace(".", "/")
        assert f"{path}.py" in names or f"{path}/__init__.py" in names, module
    # The wheel is the package only: no tests, docs or examples installed as top-level.
    assert {n.split("/")[0] for n in names if not n.startswith("asgi_kit")} <= {
        n.split("/")[0] for n in names if ".dist-info/" in n
    }
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "Name: asgi-kit" in text
    for extra in ("redis", "django", "tracing", "zstd"):
        assert f"Provides-Extra: {extra}" in text


def test_sdist_holds_the_sources_and_the_docs(dist: Path) -> None:
    (sdist,) = dist.glob("asgi_kit-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    for required in ("pyproject.toml", "README.md", "CHANGELOG.md", "asgi_kit/py.typed"):
        assert required in names
    assert any(name.startswith("docs/") for name in names)
    for module in _modules():
        path = module.replace(".", "/")
        assert f"{path}.py" in names or f"{path}/__init__.py" in names, module


def test_wheel_installs_into_a_fresh_venv_and_imports(dist: Path, tmp_path: Path) -> None:
    (wheel,) = dist.glob("asgi_kit-*.whl")
    fresh = tmp_path / "venv"
    venv.create(fresh, with_pip=False)
    python = fresh / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    install = subprocess.run(
        [*pip, "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    # Dependencies come from this environment, appended after the fresh
    # site-packages, so ``asgi_kit`` itself can only come from the wheel.
    fresh_site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(fresh_site, "_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    code = (
        "import importlib, pathlib, sys\n"
        "import asgi_kit\n"
        "here = pathlib.Path(asgi_kit.__file__).parent\n"
        f"assert here.is_relative_to({fresh_site!r}), here\n"
        "assert (here / 'py.typed').is_file()\n"
        "for name in sys.argv[1:]:\n"
        "    importlib.import_module(name)\n"
        "print(asgi_kit.__version__)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    done = subprocess.run(
        [str(python), "-c", code, *sorted(_modules())],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # not the checkout: its asgi_kit/ must not shadow the wheel
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip()
