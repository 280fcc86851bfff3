"""Does a page reach outside itself? Every reference in the HTML, its CSS and its inline SVG
that would make a browser fetch something: the asset's ``self_contained`` check, and the
tests' first line of defence before a real browser records what the page requested."""

from __future__ import annotations

import re
from bisect import bisect_right
from itertools import accumulate

_TAG = re.compile(r"<[a-zA-Z][^>]*>")
_NAMES = r"(?:src|href|xlink:href|srcset|action|formaction|poster|data|background|ping)"
# attributes (inside a tag) that make a browser load (or navigate to) what they name
_ATTRIBUTE = re.compile(r"\s" + _NAMES + r"""\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)
# a value `_allowed` accepts, quoted (closed within the tag) or bare: an anchor or a data: URI
_ALLOWED_VALUE = r"""(?:"\s*(?:#|(?i:data:))[^">]*"|'\s*(?:#|(?i:data:))[^'>]*'|#|(?i:data:))"""
# One of the attribute names given any other value. Every reference `_ATTRIBUTE` reads in a
# tag and `_allowed` refuses starts at a match of this (not every match is one); it crosses no
# `>`, so in a page's tags joined end to end each match lies within one tag.
_MAYBE_REFUSED = re.compile(r"\s(?i:" + _NAMES + r")\s*+=\s*+(?!" + _ALLOWED_VALUE + r")")
_CSS_URL = re.compile(r"""url\(\s*(?:"([^"]*)"|'([^']*)'|([^)\s<>]*))\s*\)""", re.I)
_IMPORT = re.compile(r"@import\s+[^;<]+", re.I)


def _allowed(target: str) -> bool:
    """In-page anchors and data: URIs load nothing from anywhere."""
    target = target.strip()
    return target.startswith("#") or target.lower().startswith("data:")


def _refused(matches) -> list[str]:
    found = []
    for match in matches:
        target = next(g for g in match.groups() if g is not None)
        if not _allowed(target):
            found.append(match.group(0).strip())
    return found


def external_references(html: str) -> list[str]:
    """Every reference that is neither an in-page anchor nor a data: URI (empty: none).

    The same list as reading every tag with `_ATTRIBUTE` (`external_references_of_every_tag`),
    found faster: a page's tags are mostly table cells and chart markers (`<use
    xlink:href="#...">`, one per campaign in the scatter chart), so they are searched end to end
    for `_MAYBE_REFUSED` in one call, and only the tags it points at are read attribute by
    attribute (a regex search per tag was most of a large page's check)."""
    tags = _TAG.findall(html)
    ends = list(accumulate(map(len, tags)))
    to_read = sorted(
        {bisect_right(ends, m.start()) for m in _MAYBE_REFUSED.finditer("".join(tags))}
    )
    found = _refused(m for index in to_read for m in _ATTRIBUTE.finditer(tags[index]))
    found += _refused(_CSS_URL.finditer(html))
    found += [m.group(0) for m in _IMPORT.finditer(html)]
    return found


def external_references_of_every_tag(html: str) -> list[str]:
    """`external_references` by its definition: every tag read with `_ATTRIBUTE`."""
    attributes = (m for tag in _TAG.finditer(html) for m in _ATTRIBUTE.finditer(tag.group(0)))
    found = _refused(attributes)
    found += _refused(_CSS_URL.finditer(html))
    found += [m.group(0) for m in _IMPORT.finditer(html)]
    return found
