"""Release readiness: license file and PEP 639 metadata, the PyPI long description, sdist and wheel.

The build runs from a clean copy of the repository with the installed setuptools (no
network: ``--no-isolation``), and must not print a setuptools deprecation warning. When
``build`` is not installed the sdist/wheel test skips; when ``twine`` is installed the
artifacts must also pass ``twine check --strict``.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, List, Optional, Tuple

import pytest

import depthloss

tomllib: Optional[ModuleType]
try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python < 3.11
    tomllib = None

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
COPY_IGNORE = shutil.ignore_patterns(
    ".git", "__pycache__", "*.py[cod]", ".hypothesis", ".pytest_cache", ".benchmarks",
    "build", "dist", "*.egg-info", ".venv*", "*.whl", "results",
)  # fmt: skip
# setuptools' own deprecation warnings (SetuptoolsDeprecationWarning) and its banner text
DEPRECATION = re.compile(r"deprecat", re.I)


def _pyproject() -> Dict[str, Any]:
    toml = tomllib or pytest.importorskip("tomli", reason="reading pyproject.toml needs tomli on Python < 3.11")
    with PYPROJECT.open("rb") as f:
        data: Dict[str, Any] = toml.load(f)
    return data


def _setuptools_floor(requires: List[str]) -> Tuple[int, ...]:
    spec = next(r for r in requires if r.replace(" ", "").startswith("setuptools"))
    match = re.search(r">=\s*([0-9.]+)", spec)
    assert match, f"the build requirement {spec!r} has no lower bound"
    return tuple(int(x) for x in match.group(1).split("."))


def test_license_file_is_apache_2() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_pep639_license_metadata_and_build_requirement() -> None:
    data = _pyproject()
    project = data["project"]
    assert project["license"] == "Apache-2.0", "PEP 639: the license is an SPDX expression string"
    assert project["license-files"] == ["LICENSE"]
    assert not [c for c in project.get("classifiers", []) if c.startswith("License ::")], (
        "PEP 639 replaces license classifiers (setuptools warns about them)"
    )
    # setuptools reads `license = "<SPDX>"` and `license-files` from 77.0 on
    assert _setuptools_floor(data["build-system"]["requires"]) >= (77,)
    urls = project["urls"]
    assert {"Homepage", "Source", "Issues"} <= set(urls)
    assert all(u.startswith("https://") for u in urls.values())


def test_extras_name_the_optional_integrations() -> None:
    extras = _pyproject()["project"]["optional-dependencies"]
    assert any(r.startswith("torchmetrics") for r in extras["metrics"])
    assert any(r.startswith("lightning") for r in extras["lightning"])
    assert any(r.startswith("torchmetrics") for r in extras["lightning"])
    core = _pyproject()["project"]["dependencies"]
    assert sorted(re.split(r"[<>=!~ ]", r)[0] for r in core) == ["numpy", "torch", "typing-extensions"]


def test_long_description_is_written_for_pypi_readers() -> None:
    readme = _pyproject()["project"]["readme"]
    text = (ROOT / readme).read_text(encoding="utf-8")
    assert re.search(r"^pip install depthloss$", text, re.M), "the install line is `pip install depthloss`"
    assert "clone" not in text.lower() and "-e ." not in text, "PyPI readers do not have a clone"
    assert "Apache-2.0" in text


def test_long_description_examples_run() -> None:
    """The ``python`` blocks of the long description run, in order, in one namespace."""
    text = (ROOT / _pyproject()["project"]["readme"]).read_text(encoding="utf-8")
    blocks = re.findall(r"^```python[ \t]*\n(.*?)^```", text, re.M | re.S)
    assert blocks, "the long description has no python example"
    namespace: Dict[str, Any] = {}
    for block in blocks:
        exec(compile(block, "PYPI.md", "exec"), namespace)
    assert "loss" in namespace and namespace["loss"].requires_grad


def _build(src: Path, out: Path) -> str:
    args = [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)]
    proc = subprocess.run(args, cwd=src, capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    return log


@pytest.mark.slow
def test_sdist_and_wheel_build_cleanly_and_ship_the_license(tmp_path: Path) -> None:
    if importlib.util.find_spec("build") is None:
        pytest.skip("`build` is not installed (pip install build)")
    version = depthloss.__version__
    src = tmp_path / "src_copy"
    shutil.copytree(ROOT, src, ignore=COPY_IGNORE)
    dist = tmp_path / "dist"
    log = _build(src, dist)
    warnings = [line for line in log.splitlines() if DEPRECATION.search(line)]
    assert not warnings, "setuptools deprecation warnings:\n" + "\n".join(warnings)

    wheel = dist / f"depthloss-{version}-py3-none-any.whl"
    sdist = dist / f"depthloss-{version}.tar.gz"
    assert wheel.is_file() and sdist.is_file(), sorted(p.name for p in dist.iterdir())
    with zipfile.ZipFile(wheel) as zf:
        info = f"depthloss-{version}.dist-info"
        assert zf.read(f"{info}/licenses/LICENSE") == (ROOT / "LICENSE").read_bytes()
        metadata = zf.read(f"{info}/METADATA").decode()
    assert re.search(r"^License-Expression: Apache-2\.0$", metadata, re.M), metadata[:600]
    assert re.search(r"^License-File: LICENSE$", metadata, re.M)
    assert re.search(r"^Description-Content-Type: text/markdown$", metadata, re.M)
    assert re.search(r"^Project-URL: Source, https://", metadata, re.M)
    assert "pip install depthloss" in metadata  # the long description is PYPI.md
    with tarfile.open(sdist) as tf:
        names = set(tf.getnames())
    root = f"depthloss-{version}"
    assert {f"{root}/LICENSE", f"{root}/PYPI.md", f"{root}/src/depthloss/__init__.py"} <= names
    assert {f"{root}/tests/conftest.py", f"{root}/tests/reference.py"} <= names, "the sdist's tests are complete"

    if importlib.util.find_spec("twine") is not None:
        proc = subprocess.run(
            [sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
