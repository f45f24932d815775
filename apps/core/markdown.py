"""Markdown written by users, rendered to HTML that is safe to show (nh3 sanitizes)."""

from __future__ import annotations

import html
import re
import threading

import markdown as markdown_lib
import nh3
from django.utils.safestring import SafeString, mark_safe

_ALLOWED_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "del",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "li",
    "ol",
    "p",
    "pre",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
    "img",
    "span",
}
_ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "th": {"align"}, "td": {"align"}}


_EXTENSIONS = ["tables", "fenced_code", "sane_lists"]
# Building a Markdown converter (loading its extensions) costs more than converting a short
# text, and result lists convert one description per row: each thread keeps one and resets it.
_converters = threading.local()


def _convert(text: str) -> str:
    converter = getattr(_converters, "markdown", None)
    if converter is None:
        converter = _converters.markdown = markdown_lib.Markdown(extensions=_EXTENSIONS)
    return converter.reset().convert(text)


def render_markdown(text: str | None) -> SafeString:
    rendered = _convert(text or "")
    clean = nh3.clean(
        rendered,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(clean)  # noqa: S308 — sanitized by nh3 just above


# Markdown constructs reduced to the text they show, for one-line excerpts. Rendering with the
# converter costs about a millisecond a text (25 of them per result page); these substitutions
# cost a few microseconds, and an imperfect excerpt is only cosmetic (it is escaped plain text).
_ESCAPED = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~<])")
_PRIVATE_USE = 0xE000  # escaped characters are parked here so that no rule below reads them
_PARKED = re.compile("[\ue000-\ue0ff]")
_EXCERPT_RULES = [
    (re.compile(r"^\s*(```|~~~).*$", re.MULTILINE), ""),  # code fences (their content is kept)
    (re.compile(r"^\s*\[[^\]]+\]:\s*\S+.*$", re.MULTILINE), ""),  # link reference definitions
    (re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$", re.MULTILINE), ""),  # table rules
    (re.compile(r"^\s*([-*_]\s*){3,}$", re.MULTILINE), ""),  # horizontal rules
    (re.compile(r"^\s{0,3}(#{1,6}\s+|>\s?|[-*+]\s+|\d+[.)]\s+)", re.MULTILINE), ""),  # headings, quotes, lists
    (re.compile(r"!?\[([^\]]*)\]\([^)]*\)"), r"\1"),  # images and inline links: their text
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),  # reference links
    (re.compile(r"<(https?://[^>\s]+)>"), r"\1"),  # autolinks
    (re.compile(r"<[^>]*>"), ""),  # inline HTML
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # strong
    (re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])"), r"\1"),  # emphasis with *
    (re.compile(r"(?<![\w_])_(?=\S)(.+?)(?<=\S)_(?![\w_])"), r"\1"),  # emphasis with _ (not in snake_case)
    (re.compile(r"~~(.+?)~~"), r"\1"),  # strikethrough
    (re.compile(r"`+([^`]*)`+"), r"\1"),  # inline code
    (re.compile(r"\|"), " "),  # table cells
]


# Any character or line start that some rule above reads; most descriptions have none.
_MARKUP = re.compile(r"[*_\[\]`#>|\\~<&!]|^\s*(?:[-+]|\d+[.)])\s|^\s*(?:-{3,}|\*{3,})", re.MULTILINE)


def markdown_excerpt(text: str | None, length: int = 160) -> str:
    """The first `length` characters of a Markdown text as plain text, for result lists. Only
    the start of the source is read, and the result is plain text, escaped where it is shown."""
    if not text:
        return ""
    # Markup rarely takes more than twice the characters it shows.
    plain = text[: length * 3]
    if _MARKUP.search(plain):
        plain = _ESCAPED.sub(lambda match: chr(_PRIVATE_USE + ord(match[1])), plain)
        for pattern, replacement in _EXCERPT_RULES:
            plain = pattern.sub(replacement, plain)
        plain = html.unescape(_PARKED.sub(lambda match: chr(ord(match[0]) - _PRIVATE_USE), plain))
    plain = " ".join(plain.split())
    return plain if len(plain) <= length else plain[: length - 1].rstrip() + "…"
