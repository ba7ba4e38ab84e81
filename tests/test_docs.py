"""The documentation site: one page per registered loss, in the nav, and examples that run.

The strict build itself (``mkdocs build --strict``) runs in ``.ci/run``, not here. These
tests need a checkout (the sdist has no ``docs/``); the page and nav checks also need the
``docs`` extra (mkdocs), the examples only torch.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List

import pytest

import depthloss

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MKDOCS_YML = ROOT / "mkdocs.yml"
LOSSES = depthloss.list_losses()

pytestmark = pytest.mark.skipif(not MKDOCS_YML.is_file(), reason="no docs site in this tree (an sdist)")

FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)


def _config() -> Dict[str, Any]:
    pytest.importorskip("mkdocs")
    yaml = pytest.importorskip("yaml")  # PyYAML comes with mkdocs
    config = yaml.safe_load(MKDOCS_YML.read_text(encoding="utf-8"))
    assert isinstance(config, dict)
    return config


def _nav_files(items: Any) -> List[str]:
    if isinstance(items, str):
        return [items]
    if isinstance(items, dict):
        return [f for v in items.values() for f in _nav_files(v)]
    if isinstance(items, list):
        return [f for v in items for f in _nav_files(v)]
    return []


def _path(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


@pytest.mark.parametrize("name", LOSSES)
def test_every_registered_loss_has_a_page(name: str) -> None:
    _config()
    page = DOCS / "losses" / f"{name}.md"
    assert page.is_file(), f"registered loss {name!r} has no page docs/losses/{name}.md (see docs/README.md)"


@pytest.mark.parametrize("name", LOSSES)
def test_every_loss_page_is_in_the_nav(name: str) -> None:
    nav = _nav_files(_config().get("nav", []))
    assert f"losses/{name}.md" in nav, f"add '- {name}: losses/{name}.md' under Losses in the nav of mkdocs.yml"


@pytest.mark.parametrize("name", LOSSES)
def test_every_loss_page_renders_its_metadata_and_api(name: str) -> None:
    _config()
    page = DOCS / "losses" / f"{name}.md"
    if not page.is_file():
        pytest.skip("no page (reported by test_every_registered_loss_has_a_page)")
    text = page.read_text(encoding="utf-8")
    info = depthloss.loss_info(name)
    assert re.search(rf"<!--\s*depthloss:info\s+{re.escape(name)}\s*-->", text), (
        f"docs/losses/{name}.md should contain '<!-- depthloss:info {name} -->' (the registry table)"
    )
    assert f"::: {_path(info.cls)}" in text, f"docs/losses/{name}.md should render ::: {_path(info.cls)}"
    if info.functional is not None:
        fn = _path(info.functional)
        assert f"::: {fn}" in text, f"docs/losses/{name}.md should render ::: {fn}"


def _example_pages() -> List[Path]:
    if not DOCS.is_dir():
        return []
    pages = sorted(DOCS.rglob("*.md"))
    pages = [p for p in pages if p.name != "README.md" and not p.name.startswith("_")]
    return [p for p in pages if FENCE.search(p.read_text(encoding="utf-8"))]


@pytest.mark.parametrize("page", _example_pages(), ids=lambda p: p.relative_to(DOCS).as_posix())
def test_page_examples_run(page: Path) -> None:
    """Every ```python block of a page runs, in order, in one namespace per page.

    Blocks that call ``torch.compile`` are skipped (compiling is slow; tests/test_compile.py
    covers it).
    """
    blocks = [b for b in FENCE.findall(page.read_text(encoding="utf-8")) if "torch.compile" not in b]
    if not blocks:
        pytest.skip("no runnable python examples")
    namespace: Dict[str, Any] = {"__name__": f"docs_example_{page.stem}"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{page.relative_to(ROOT)} (python block {i + 1})", "exec"), namespace)
