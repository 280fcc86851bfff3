"""Does a page reach outside itself? Every reference in the HTML, its CSS and its inline SVG
that would make a browser fetch something: the asset's ``self_contained`` check, and the
tests' first line of defence before a real browser records what the page requested."""

from __future__ import annotations

import re

_TAG = re.compile(r"<[a-zA-Z][^>]*>")
# attributes (inside a tag) that make a browser load (or navigate to) what they name
_ATTRIBUTE = re.compile(
    r"""\s(?:src|href|xlink:href|srcset|action|formaction|poster|data|background|ping)\s*=\s*"""
    r"""(?:"([^"]*)"|'([^']*)'|([^\s>]+))""",
    re.I,
)
_CSS_URL = re.compile(r"""url\(\s*(?:"([^"]*)"|'([^']*)'|([^)\s<>]*))\s*\)""", re.I)
_IMPORT = re.compile(r"@import\s+[^;<]+", re.I)


def _allowed(target: str) -> bool:
    """In-page anchors and data: URIs load nothing from anywhere."""
    target = target.strip()
    return target.startswith("#") or target.lower().startswith("data:")


def external_references(html: str) -> list[str]:
    """Every reference that is neither an in-page anchor nor a data: URI (empty: none)."""
    attributes = (m for tag in _TAG.finditer(html) for m in _ATTRIBUTE.finditer(tag.group(0)))
    found = []
    for match in (*attributes, *_CSS_URL.finditer(html)):
        target = next(g for g in match.groups() if g is not None)
        if not _allowed(target):
            found.append(match.group(0).strip())
    found += [m.group(0) for m in _IMPORT.finditer(html)]
    return found
