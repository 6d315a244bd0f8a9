"""Markdown of descriptions and README files, rendered to HTML that is safe on the page.

WHY these libraries: markdown-it-py is CommonMark-compliant and kept by the executable-books
project; nh3 (Rust's ammonia, maintained by the messense/PyO3 people) is the sanitiser html5lib's
bleach gave way to. Raw HTML in the markdown is not rendered at all (markdown-it's `html`
option off), and what markdown-it produces is cleaned again by nh3 with an allow-list: a
description written by anyone who can log an artifact can never put script, styles, forms or
event handlers on this page. Links get `rel="noopener noreferrer"`; images only load from this
page's own origin anyway (the Content-Security-Policy).
"""

from __future__ import annotations

import functools

from markdown_it import MarkdownIt

MAX_CHARS = 200_000
"""Longer text is cut before rendering (a description is short; a README may not be)."""
ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5",
    "h6", "hr", "i", "img", "li", "ol", "p", "pre", "s", "strong", "sub", "sup", "table",
    "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "th": {"align"},
    "td": {"align"},
    "ol": {"start"},
    "code": {"class"},
}


@functools.lru_cache(maxsize=1)
def _parser() -> MarkdownIt:

    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(
        ["table", "strikethrough"]
    )


def render_markdown(text: str) -> str:
    """`text` as sanitised HTML (a fragment)."""
    import nh3

    html = _parser().render(text[:MAX_CHARS])
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )
