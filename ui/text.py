"""Strings from users, files, payloads and links on the page: always text, never markup.

Labels, tags, paths, field and subset names, cluster names, predictions, review records and
link parameters are data. Each reaches the page through one of three renderers (HTML, Plotly,
Markdown), each with its function here, called where the string meets the renderer (never
earlier, so the data itself stays exact):

    html_text(s)      an HTML fragment (gr.HTML, and gr.Warning / gr.Info: Gradio shows a
                      toast's message as HTML)
    plotly_text(s)    Plotly's text (titles, axis ticks, trace names): Plotly draws <b>, <a href>
                      and friends, and decodes &amp; &lt; &gt; but not &quot;, so quotes stay
    markdown_text(s)  a gr.Markdown value: every ASCII punctuation character is backslash-escaped
                      (CommonMark's escape), so neither HTML nor Markdown syntax (links, emphasis,
                      headings, autolinks) survives, and line breaks become spaces
    markdown_code(s)  the same inside a code span's look, where the text has no backquote

The map's own JavaScript writes names with `textContent` (hover card, cluster names) and
escapes legend names for Plotly itself by `plotly_text`'s rule (ui/map/component.py `plotlyText`).
"""
from __future__ import annotations

import html
import re

_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # ASCII punctuation: CommonMark escapes each with "\"
_BREAKS = re.compile(r"[\r\n\t\f\v\u2028\u2029]+")


def html_text(value: object) -> str:
    """`value` as HTML text, quotes included (safe in an element and in a quoted attribute)."""
    return html.escape(str(value), quote=True)


def plotly_text(value: object) -> str:
    """`value` as Plotly text: its tags' characters escaped, quotes left as they are."""
    return html.escape(str(value), quote=False)


def markdown_text(value: object) -> str:
    """`value` as Markdown text: shown as it is, on one line, with no markup taken from it."""
    return _PUNCTUATION.sub(r"\\\1", _BREAKS.sub(" ", str(value)))


def markdown_code(value: object) -> str:
    """`value` in a code span (`like this`), which shows its text as it is; a value with a
    backquote (which would end the span) is escaped text instead."""
    text = _BREAKS.sub(" ", str(value))
    return markdown_text(text) if "`" in text or not text.strip() else f"`{text}`"
