"""Packaging tests: the README's test command is CI's, the version is single-sourced, the wheel works.

The wheel test builds a wheel from a clean copy of the repository (an in-tree build would
write ``build/`` and ``*.egg-info`` into the working tree, and stale files in ``build/lib``
would leak into the wheel), installs it into a fresh virtual environment and imports it
from outside the repository.

The venv does not use ``--system-site-packages``: when the tests themselves run in a venv,
that flag exposes the *base* interpreter's packages, not the ones where torch is installed.
Instead a ``.pth`` file in the venv lists the test interpreter's ``sys.path`` entries minus
the source tree. Directories named in a ``.pth`` file are added as plain path entries, so
their own ``.pth`` files (the editable install's path entry or import-hook finder) are not
processed, and they come after the venv's site-packages: only the installed wheel can
provide ``depthloss``. The test asserts that instead of trusting it.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict, List

import pytest

import depthloss

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python < 3.11
    tomllib = None

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CI_RUN = ROOT / ".ci" / "run"
PYPROJECT = ROOT / "pyproject.toml"
# Not copied for the wheel build: VCS data, caches, build outputs, local virtual environments.
COPY_IGNORE = shutil.ignore_patterns(
    ".git", "__pycache__", "*.py[cod]", ".hypothesis", ".pytest_cache", ".benchmarks",
    "build", "dist", "*.egg-info", ".venv*", "*.whl",
)  # fmt: skip


def _section(markdown: str, heading: str) -> str:
    """The text under a ``## heading`` line, up to the next heading of level 1 or 2."""
    match = re.search(rf"^{re.escape(heading)}[ \t]*\n(.*?)(?=^#{{1,2}} |\Z)", markdown, re.M | re.S)
    assert match, f"README.md has no {heading!r} section"
    return match.group(1)


def _fenced_blocks(markdown: str, lang: str) -> List[str]:
    """Contents of the fenced code blocks tagged ``lang``."""
    return re.findall(rf"^```{re.escape(lang)}[ \t]*\n(.*?)^```", markdown, re.M | re.S)


def _command_lines(text: str) -> List[str]:
    """Non-empty lines of a shell snippet that are not comments, stripped."""
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _pyproject() -> Dict:
    toml = tomllib or pytest.importorskip("tomli", reason="reading pyproject.toml needs tomli on Python < 3.11")
    with PYPROJECT.open("rb") as f:
        return toml.load(f)


def _version_source() -> Path:
    """The file the build reads the version from: pyproject's dynamic ``attr`` resolved in the package dir."""
    project = _pyproject()
    assert "version" in project["project"].get("dynamic", []), "version must be dynamic in pyproject.toml"
    assert "version" not in project["project"], "a static version would shadow the single source"
    attr = project["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    module, _, name = attr.rpartition(".")
    assert name == "__version__", attr
    where = project["tool"]["setuptools"]["packages"]["find"]["where"]
    candidates = [ROOT / w / Path(*module.split(".")) for w in where]
    files = [p.with_suffix(".py") for p in candidates if p.with_suffix(".py").is_file()]
    files += [p / "__init__.py" for p in candidates if (p / "__init__.py").is_file()]
    assert len(files) == 1, f"{attr!r} should resolve to exactly one file under {where}, found {files}"
    return files[0]


def _source_version() -> str:
    """``__version__`` of the version file as setuptools reads it: a literal, found without importing."""
    tree = ast.parse(_version_source().read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__version__" for t in targets):
                value = ast.literal_eval(node.value)  # type: ignore[arg-type]
                assert isinstance(value, str), value
                return value
    raise AssertionError(f"no __version__ literal in {_version_source()}")


# --- README and CI ---------------------------------------------------------------------


def test_readme_test_command_is_what_ci_runs() -> None:
    blocks = [b for b in _fenced_blocks(_section(README.read_text(encoding="utf-8"), "## Quick start"), "bash")
              if "pytest" in b]  # fmt: skip
    assert len(blocks) == 1, f"expected one bash block running pytest under '## Quick start', got {blocks}"
    command = _command_lines(blocks[0])
    assert command, "the README's test block is empty"

    script = CI_RUN.read_text(encoding="utf-8").splitlines()
    ci_lines = [line.strip() for line in script]
    starts = [i for i in range(len(ci_lines) - len(command) + 1) if ci_lines[i : i + len(command)] == command]
    assert starts, f"{CI_RUN.relative_to(ROOT)} does not run the README's test command {command}"
    # A failing install or test must fail the CI job: strict mode is on before the command runs.
    assert "set -euo pipefail" in ci_lines[: starts[0]], "`.ci/run` must `set -euo pipefail` before the command"
    assert script[0].startswith("#!") and "bash" in script[0], "`.ci/run` must be a bash script"
    assert os.access(CI_RUN, os.X_OK), "`.ci/run` must be executable"


# --- version ----------------------------------------------------------------------------


def test_version_is_single_sourced() -> None:
    source = _version_source()
    assert source == ROOT / "src" / "depthloss" / "_version.py"
    assert depthloss.__version__ == _source_version()
    assert Path(depthloss.__file__).resolve().parent == source.parent, "tests should import the source tree"


# --- wheel ------------------------------------------------------------------------------

_CHECK_INSTALLED = """
import json, pathlib, sys
import depthloss
init = pathlib.Path(depthloss.__file__).resolve()
print(json.dumps({"file": str(init), "version": depthloss.__version__, "losses": depthloss.list_losses(),
                  "py_typed": (init.parent / "py.typed").is_file(), "prefix": sys.prefix}))
"""


def _clean_env() -> Dict[str, str]:
    """The environment without variables that would put the source tree on ``sys.path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV"))}
    env["PYTHONNOUSERSITE"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _run(args: List[str], cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(map(str, args))} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _host_path_entries() -> List[str]:
    """This interpreter's ``sys.path`` entries (torch, numpy, pip, ...) minus the source tree and cwd."""
    entries: List[str] = []
    for entry in sys.path:
        path = Path(entry or os.getcwd()).resolve()
        if path.is_dir() and not path.is_relative_to(ROOT) and str(path) not in entries:
            entries.append(str(path))
    return entries


def test_wheel_installs_and_ships_what_it_should(tmp_path: Path) -> None:
    if importlib.util.find_spec("venv") is None:
        pytest.skip("the venv module is not available")
    try:  # metadata, not find_spec: setuptools' distutils shim warns when pip is looked up in-process
        importlib.metadata.distribution("pip")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("pip is not available")
    version = _source_version()

    # Build from a clean copy, with the setuptools already installed (no network).
    src = tmp_path / "src_copy"
    shutil.copytree(ROOT, src, ignore=COPY_IGNORE)
    dist = tmp_path / "dist"
    _run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-w", str(dist)], tmp_path
    )
    wheels = list(dist.glob("depthloss-*.whl"))
    assert len(wheels) == 1, wheels
    wheel = wheels[0]
    assert wheel.name.startswith(f"depthloss-{version}-"), wheel.name

    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        metadata = zf.read(f"depthloss-{version}.dist-info/METADATA").decode()
    assert "depthloss/py.typed" in names
    assert "depthloss/__init__.py" in names
    assert not [n for n in names if n.split("/")[0] in ("tests", "benchmarks", "examples")]
    assert {n.split("/")[0] for n in names} == {"depthloss", f"depthloss-{version}.dist-info"}
    assert re.search(rf"^Version: {re.escape(version)}$", metadata, re.M), metadata[:400]

    # A fresh venv that sees this interpreter's packages (torch, numpy, pip) but not the source tree.
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = next(p for p in (bindir / "python", bindir / "python.exe") if p.exists())
    purelib = _run([str(python), "-I", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], tmp_path)
    site_packages = Path(purelib.stdout.strip())
    site_packages.mkdir(parents=True, exist_ok=True)
    (site_packages / "_host_packages.pth").write_text("\n".join(_host_path_entries()) + "\n", encoding="utf-8")
    _run([str(python), "-m", "pip", "install", "--no-deps", "--force-reinstall", "--no-index", str(wheel)], tmp_path)

    # -I: no cwd or script dir on sys.path, no PYTHON* variables, no user site-packages.
    proc = _run([str(python), "-I", "-c", _CHECK_INSTALLED], tmp_path)
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    installed = Path(info["file"])
    assert Path(info["prefix"]).resolve() == venv.resolve()
    assert installed.is_relative_to(site_packages.resolve()), f"imported {installed}, not the wheel in {venv}"
    assert not installed.is_relative_to(ROOT), f"the source tree shadows the installed wheel: {installed}"
    assert info["version"] == version
    assert info["py_typed"], "py.typed is not installed next to depthloss/__init__.py"
    assert info["losses"] == depthloss.list_losses(), "the installed registry differs from the source's"
