"""MkDocs hooks: the parts of the site that come from the loss registry, never written twice.

Loaded from ``mkdocs.yml`` (``hooks: - docs/_ext/hooks.py``). A page may contain

- ``<!-- depthloss:losses-table -->``: the table of every registered loss (name linked to its
  page, summary, where it is computed, invariances, progress, scopes), from ``loss_info``;
- ``<!-- depthloss:info NAME -->``: the registry metadata of one loss and its constructor
  defaults (taken from the ``__init__`` signatures, so they cannot drift from the code).

The build warns (and ``--strict`` fails) when a registered loss has no page
``docs/losses/<name>.md`` or that page is not in the nav.
"""

from __future__ import annotations

import ast
import posixpath
import re
from pathlib import Path
from typing import Any, Dict, List

from mkdocs.plugins import get_plugin_logger

log = get_plugin_logger("depthloss-docs")

INFO = re.compile(r"<!--\s*depthloss:info\s+(\S+)\s*-->")
TYPES = re.compile(r"<!--\s*depthloss:types\s*-->")
TYPE_HEADS = ("Literal", "Union", "Optional", "Callable", "Sequence", "Tuple")
TABLE = re.compile(r"<!--\s*depthloss:(losses|functional|modules)-table\s*-->")

SPACES = {
    "input": "the maps as given",
    "inverse": "inverse depth",
    "depth": "depth",
    "inverse+depth": "inverse depth + depth",
}


def _registry() -> Dict[str, Any]:
    import depthloss

    return {name: depthloss.loss_info(name) for name in depthloss.list_losses()}


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _code(value: Any) -> str:
    # Python-Markdown's tables do not split on pipes inside code spans (nor unescape them)
    return f"`{value!r}`"


def _path(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def _nav_files(items: Any) -> List[str]:
    out: List[str] = []
    if isinstance(items, str):
        out.append(items)
    elif isinstance(items, dict):
        for value in items.values():
            out.extend(_nav_files(value))
    elif isinstance(items, list):
        for value in items:
            out.extend(_nav_files(value))
    return out


_REGISTRY: Dict[str, Any] = {}


def on_config(config: Any, **kwargs: Any) -> Any:
    _REGISTRY.clear()
    _REGISTRY.update(_registry())
    return config


def on_files(files: Any, config: Any, **kwargs: Any) -> Any:
    nav = set(_nav_files(config["nav"] or []))
    for name in _REGISTRY:
        page = f"losses/{name}.md"
        if files.get_file_from_path(page) is None:
            log.warning("registered loss %r has no page docs/%s (see docs/README.md)", name, page)
        elif page not in nav:
            log.warning("registered loss %r: docs/%s is not in the nav of mkdocs.yml", name, page)
    return files


def _page_link(name: str, files: Any, page: Any) -> str:
    """``[`name`](relative/path/to/losses/name.md)`` from ``page``, or plain code without a page."""
    target = f"losses/{name}.md"
    if files.get_file_from_path(target) is None:
        return f"`{name}`"
    here = posixpath.dirname(page.file.src_uri)
    return f"[`{name}`]({posixpath.relpath(target, here or '.')})"


def _table(kind: str, registry: Dict[str, Any], files: Any, page: Any) -> str:
    if kind == "functional":
        rows = ["| function | loss page | summary |", "|---|---|---|"]
        for name, info in registry.items():
            if info.functional is not None:
                fn = f"[`{info.functional.__name__}`][{_path(info.functional)}]"
                rows.append(f"| {fn} | {_page_link(name, files, page)} | {_cell(info.summary)} |")
        return "\n".join(rows)
    if kind == "modules":
        rows = ["| class | loss page | summary |", "|---|---|---|"]
        for name, info in registry.items():
            cls = f"[`{info.cls.__name__}`][{_path(info.cls)}]"
            rows.append(f"| {cls} | {_page_link(name, files, page)} | {_cell(info.summary)} |")
        return "\n".join(rows)
    rows = [
        "| loss | summary | computed on | invariant to | progress | scopes |",
        "|---|---|---|---|---|---|",
    ]
    for name, info in registry.items():
        aliases = f" (alias {', '.join(f'`{a}`' for a in info.aliases)})" if info.aliases else ""
        label = _page_link(name, files, page)
        rows.append(
            f"| {label}{aliases} | {_cell(info.summary)} | {SPACES.get(info.loss_space, info.loss_space)} "
            f"| {', '.join(info.invariances) or '–'} | {'yes' if info.uses_progress else '–'} "
            f"| {', '.join(info.scopes)} |"
        )
    return "\n".join(rows)


def _info(info: Any) -> str:
    names = f"`{info.name}`"
    if info.aliases:
        names += " (alias " + ", ".join(f"`{a}`" for a in info.aliases) + ")"
    lines = [
        "| | |",
        "|---|---|",
        f"| name | {names}; `sparse-{info.name}` marks sparse targets for `SupervisedLoss` |",
        f"| module | [`{info.cls.__name__}`][{_path(info.cls)}] |",
    ]
    if info.functional is not None:
        lines.append(f"| functional | [`{info.functional.__name__}`][{_path(info.functional)}] |")
    lines += [
        f"| formula | `{' '.join(info.formula.split())}` |",
        f"| computed on | {SPACES.get(info.loss_space, info.loss_space)} |",
        f"| invariant to | {', '.join(info.invariances) or 'nothing (metric)'} |",
        f"| uses `progress` | {'yes' if info.uses_progress else 'no'} |",
        f"| scopes | {', '.join(f'`{s}`' for s in info.scopes)} |",
    ]
    if info.inputs:
        lines.append(f"| extra `forward` inputs | {', '.join(f'`{i}`' for i in info.inputs)} |")
    if info.input_layout != "image":
        lines.append(f"| input layout | `{info.input_layout}` |")
    lines.append(f"| when | {_cell(info.when)} |")
    defaults = ["", "| parameter | default |", "|---|---|"]
    for key, value in info.defaults.items():
        shown = "required: `'depth'` or `'inverse'`" if key == "input_space" else _code(value)
        defaults.append(f"| `{key}` | {shown} |")
    return "\n".join(lines + defaults)


def _types(config: Any) -> str:
    """Every module-level type alias of the package (``Reduction = Literal[...]``), with an anchor.

    Signatures name these aliases; the anchors make those names links. Read from the source
    (the aliases have no docstrings for mkdocstrings to render).
    """
    src = Path(config["config_file_path"]).parent / "src"
    lines = ["| type | definition | module |", "|---|---|---|"]
    for file in sorted((src / "depthloss").rglob("*.py")):
        module = ".".join(file.relative_to(src).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.parse(file.read_text(encoding="utf-8")).body:
            if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
                continue
            target, value = node.targets[0], node.value
            if not (isinstance(target, ast.Name) and isinstance(value, ast.Subscript)):
                continue
            head = value.value
            if isinstance(head, ast.Name) and head.id in TYPE_HEADS:
                anchor = f"[](){{#{module}.{target.id}}}"
                lines.append(f"| {anchor} `{target.id}` | `{ast.unparse(value)}` | `{module}` |")
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any, **kwargs: Any) -> str:
    def info(m: re.Match[str]) -> str:
        import depthloss

        try:
            return _info(depthloss.loss_info(m.group(1)))
        except ValueError:
            log.warning("%s: %s is not a registered loss", page.file.src_uri, m.group(1))
            return m.group(0)

    markdown = TYPES.sub(lambda m: _types(config), markdown)
    markdown = TABLE.sub(lambda m: _table(m.group(1), _REGISTRY, files, page), markdown)
    return INFO.sub(info, markdown)
