"""Griffe extension: render depthloss's Sphinx-flavoured docstrings as Markdown.

The docstrings are Google style (what mkdocstrings parses) with a few reStructuredText
constructs that Markdown does not know. Before mkdocstrings parses a docstring, this
extension rewrites, in place and only for the docs build (``src/`` is never touched):

- ``.. math::`` directives into ``$$ ... $$`` blocks (arithmatex); several lines joined by
  ``\\`` or aligned with ``&`` are wrapped in ``aligned``, as Sphinx does;
- ``:math:`x``` into ``\\(x\\)``;
- ``:func:``, ``:class:``, ``:meth:``, ``:attr:``, ``:mod:``, ``:data:``, ``:exc:``,
  ``:obj:`` roles into *optional* cross-references: a link where the object is rendered
  somewhere on the site, plain code otherwise (never a warning). Relative names are
  resolved in the docstring's scope; ``~`` shows the last component, as in Sphinx;
- an ``Args`` item naming several parameters over several lines into one line;
- the Google section ``Example:`` into ``Examples:`` (the spelling griffe knows);
- reST section titles (a line underlined with ``---``/``===``) into bold paragraphs, so a
  module docstring does not add headings to the page's table of contents.

Loaded from ``mkdocs.yml`` (``extensions: - docs/_ext/griffe_rst.py``).
"""

from __future__ import annotations

import html
import re
from typing import Any, Iterator, List, Optional

import griffe

ROLE = re.compile(r":(?:py:)?(func|class|meth|attr|mod|data|exc|obj|const):`(~?)([^`]+?)`")
MATH_ROLE = re.compile(r":math:`([^`]+)`")
UNDERLINE = re.compile(r"^\s*([-=~^\"'`#*+])\1{2,}\s*$")
DIRECTIVE = re.compile(r"^(\s*)\.\. math::\s*(.*)$")
EXAMPLE = re.compile(r"^(\s*)Example:\s*$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _math_blocks(lines: List[str]) -> List[str]:
    out: List[str] = []
    i = 0
    while i < len(lines):
        m = DIRECTIVE.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        pad = m.group(1)
        base = len(pad)
        body: List[str] = [m.group(2)] if m.group(2).strip() else []
        first_indent: Optional[int] = None
        i += 1
        while i < len(lines):
            line = lines[i]
            if not line.strip():
                # a blank line ends the block unless more indented content follows
                j = i + 1
                while j < len(lines) and not lines[j].strip():
                    j += 1
                if j < len(lines) and _indent(lines[j]) > base and (body or first_indent is None):
                    if body:
                        body.append("")
                    i = j
                    continue
                break
            if _indent(line) <= base:
                break
            if first_indent is None:
                first_indent = _indent(line)
            body.append(line.strip())
            i += 1
        while body and not body[-1]:
            body.pop()
        tex = "\n".join(body)
        if ("\\\\" in tex or "&" in tex) and "\\begin{" not in tex:
            tex = "\\begin{aligned}\n" + tex + "\n\\end{aligned}"
        if out and out[-1].strip():
            out.append("")
        out.append(pad + "$$")
        out.extend(pad + t if t else "" for t in tex.splitlines())
        out.append(pad + "$$")
        if i < len(lines) and lines[i].strip():
            out.append("")
    return out


NAMES_ONLY = re.compile(r"^\s*\*{0,2}\w+(\s*,\s*\*{0,2}\w+)*\s*,\s*$")
SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Params|Attributes|Other Parameters):\s*$")


def _name_lists(lines: List[str]) -> List[str]:
    """Join an Args item that lists several names over several lines (``a, b,`` / ``c: ...``)."""
    out: List[str] = []
    in_section = False
    for line in lines:
        if SECTION.match(line):
            in_section = True
        elif line.strip() and in_section and out and NAMES_ONLY.match(out[-1]) and _indent(line) == _indent(out[-1]):
            out[-1] = out[-1].rstrip() + " " + line.strip()
            continue
        elif not line.strip():
            in_section = False
        out.append(line)
    return out


def _headings(lines: List[str]) -> List[str]:
    out: List[str] = []
    for i, line in enumerate(lines):
        prev = lines[i - 1] if i else ""
        if (
            i
            and UNDERLINE.match(line)
            and prev.strip()
            and not UNDERLINE.match(prev)
            and len(line.strip()) >= len(prev.strip())
            and out
        ):
            out[-1] = out[-1][: _indent(prev)] + f"**{prev.strip()}**"
            out.append("")
            continue
        out.append(line)
    return out


def _resolve(obj: griffe.Object, target: str) -> Optional[str]:
    """Full path of ``target`` as seen from ``obj``'s docstring, or None."""
    target = target.strip().rstrip("()")
    if target.startswith("depthloss."):
        path = target
    else:
        head, _, rest = target.partition(".")
        scope: Optional[griffe.Object] = obj
        path = None
        while scope is not None and path is None:
            try:
                path = scope.resolve(head)
            except Exception:  # an unknown name is simply not linked
                path = None
            scope = scope.parent
        if path is None:
            return None
        if rest:
            path = f"{path}.{rest}"
    # ``depthloss.functional.silog`` is the module of the function ``silog`` (the package
    # re-exports the function under the module's name): link the function.
    last = path.rsplit(".", 1)[-1]
    try:
        found = obj.modules_collection[path]
        if found.is_module and last in found.members and not found.members[last].is_module:
            return f"{path}.{last}"
    except Exception:
        pass
    return path


def _roles(obj: griffe.Object, text: str) -> str:
    def role(m: re.Match[str]) -> str:
        tilde, target = m.group(2), m.group(3)
        title = target.rsplit(".", 1)[-1] if tilde else target
        code = f"<code>{html.escape(title)}</code>"
        path = _resolve(obj, target.lstrip("~"))
        if path is None:
            return code
        return f'<autoref identifier="{html.escape(path)}" optional>{code}</autoref>'

    text = MATH_ROLE.sub(lambda m: "\\(" + m.group(1) + "\\)", text)
    return ROLE.sub(role, text)


def convert(obj: griffe.Object, text: str) -> str:
    lines = _math_blocks(text.splitlines())
    lines = _headings(lines)
    lines = _name_lists(lines)
    # Griffe reads "Examples:" as the examples section (doctests shown as code) and a
    # singular "Example:" as an admonition of plain Markdown.
    lines = [EXAMPLE.sub(r"\1Examples:", line) for line in lines]
    return _roles(obj, "\n".join(lines))


def _walk(obj: griffe.Object) -> Iterator[griffe.Object]:
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _walk(member)  # type: ignore[arg-type]


class RstToMarkdown(griffe.Extension):
    """Rewrite the reST constructs of every docstring of a package once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for obj in _walk(pkg):
            if obj.docstring is not None:
                obj.docstring.value = convert(obj, obj.docstring.value)
