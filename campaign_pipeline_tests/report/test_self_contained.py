"""The self_contained check finds every way a page could make a browser fetch something, and
lets through what loads nothing (in-page anchors, data: URIs)."""

import pytest

from campaign_pipeline.report.self_contained import (
    external_references,
    external_references_of_every_tag,
)

FETCHING = [
    '<img src="https://cdn.example.com/logo.png">',
    "<script src='//cdn.example.com/app.js'></script>",
    '<link rel="stylesheet" href="styles.css">',
    "<a href=https://example.com/more>more</a>",
    '<use xlink:href="sprite.svg#icon"/>',
    '<img srcset="big.png 2x">',
    "<form action='/submit'></form>",
    '<div style="background:url(https://example.com/bg.png)"></div>',
    "<style>body{background:url( 'bg.png' )}</style>",
    '<style>@import "https://fonts.example.com/font.css";</style>',
]
HARMLESS = [
    '<a href="#overview">Overview</a>',
    '<link rel="icon" href="data:,">',
    "<img src='data:image/png;base64,iVBORw0KGgo='>",
    '<path clip-path="url(#scatter-p1)"/>',
    '<use xlink:href="#flag0-m1"/>',
    "<p>see src = the source, href and url( in prose</p>",
]


@pytest.mark.parametrize("html", FETCHING)
def test_a_reference_that_fetches_is_found(html):
    assert len(external_references(html)) == 1, html


def test_anchors_data_uris_and_prose_are_not_references():
    assert external_references("\n".join(HARMLESS)) == []


# Where the fast search for candidate tags could part from reading every tag: quotes left open
# inside a tag, values that only start like an anchor, case, Unicode spaces, `<` inside a tag,
# tags side by side, and values before and after an allowed one in the same tag.
EDGES = [
    '<a href="#x>',
    "<a href='#x>",
    '<a href=" #x">',
    '<a href="\u2003#x"> <a href="\u2003http://x">',
    "<a HREF='DATA:x'> <a Href='Data;x'>",
    '<a href="">',
    "<a href= >",
    "<a href=>",
    "<x <a src=http://y>",
    '<a title="<b src=http://y>">',
    '<img src="#a" src="http://b">',
    '<img src="http://b" src="#a">',
    '<a title="x"><b src=http://y><c href="#z">',
    '<a\u00a0href="http://x">',
    '<a href\n=\n"http://x">',
    '<a data="x" data-v="http://y">',
    '<a href="#x" src="data:y" ping=" https://z ">',
    "<use xlink:href='#m'/><use xlink:href='m'/>",
    '<a href="#ok"title=x src=#>',
    "<p>src=http://x in prose</p><a\thref=http://y>",
    '<a href="# no closing quote> <b src="http://z">',
]


@pytest.mark.parametrize("html", EDGES)
def test_the_fast_search_finds_what_reading_every_tag_finds(html):
    assert external_references(html) == external_references_of_every_tag(html), html


def test_the_fast_search_agrees_on_random_pages():
    random = pytest.importorskip("random").Random(21)
    pieces = [
        "<",
        ">",
        '"',
        "'",
        " ",
        "\t",
        "=",
        "#",
        "a",
        "href",
        "SRC",
        "data:",
        "Data",
        "x",
        "http://e",
        "<use xlink:href=",
        '<td data-v="1">',
        "url(",
        ")",
    ]
    for _ in range(3000):
        html = "".join(random.choice(pieces) for _ in range(random.randint(1, 30)))
        assert external_references(html) == external_references_of_every_tag(html), html
