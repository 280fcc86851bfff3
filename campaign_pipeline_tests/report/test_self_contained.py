"""The self_contained check finds every way a page could make a browser fetch something, and
lets through what loads nothing (in-page anchors, data: URIs)."""

import pytest

from campaign_pipeline.report.self_contained import external_references

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
