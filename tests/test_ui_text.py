"""ui/text.py: a string from data or a link, rendered by a CommonMark renderer (markdown-it, the
reference behaviour Gradio's Markdown follows) or parsed as HTML, is its own text and no element.
The page itself (Gradio's renderers, Plotly, toasts) is checked in tests/test_ui_browser_hostile.py."""
from __future__ import annotations

from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt

from ui.text import html_text, markdown_code, markdown_text, plotly_text

HOSTILE = [
    '<a href="evil.html">Log in again</a>',
    '<img src=x onerror="window.pwned=1">',
    "</script><b>bold</b>",
    "[link](evil.html) **bold** _em_ `code` <https://evil.example> ![i](x.png)",
    "# heading",
    "- item\n\n1. item\n> quote",
    "&amp; &lt;b&gt; \\*",
    "a | b | c\n---|---|---",
    "'single' \"double\"",
]


class Parsed(HTMLParser):
    """Tags and text of an HTML fragment, as a browser would build them."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text = ""
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text += data


def one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("text", HOSTILE)
def test_markdown_text_renders_as_its_own_text_in_one_paragraph(text: str) -> None:
    rendered = Parsed(MarkdownIt("commonmark").render(markdown_text(text)))
    assert rendered.tags == ["p"]
    assert one_line(rendered.text) == one_line(text)


@pytest.mark.parametrize("text", HOSTILE)
def test_markdown_code_is_a_code_span_or_plain_text(text: str) -> None:
    rendered = Parsed(MarkdownIt("commonmark").render(markdown_code(text)))
    assert rendered.tags == (["p"] if "`" in text else ["p", "code"])
    assert one_line(rendered.text) == one_line(text)


@pytest.mark.parametrize("text", HOSTILE)
def test_html_text_is_text_in_an_element_and_in_an_attribute(text: str) -> None:
    rendered = Parsed(f'<span title="{html_text(text)}">{html_text(text)}</span>')
    assert rendered.tags == ["span"] and rendered.text == text
    assert Parsed(f"<span data-x='{html_text(text)}'></span>").tags == ["span"]


@pytest.mark.parametrize("text", HOSTILE)
def test_plotly_text_has_no_tag_and_only_the_entities_plotly_decodes(text: str) -> None:
    escaped = plotly_text(text)
    assert "<" not in escaped and ">" not in escaped
    assert escaped.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") == text
