"""Markdown rendering: sanitized HTML for pages, plain-text excerpts for result lists."""

import threading

import pytest
from django.template import Context, Template

from apps.core.markdown import markdown_excerpt, render_markdown


def test_excerpt_is_plain_text_of_the_rendered_markdown():
    text = "# Churn\n\nMonthly **churn** labels, see [the wiki](https://wiki/x).\n\n- one\n- two"
    assert markdown_excerpt(text) == "Churn Monthly churn labels, see the wiki. one two"


def test_excerpt_truncates_with_an_ellipsis_and_keeps_short_texts_whole():
    assert markdown_excerpt("word " * 100, 20) == "word word word word…"
    assert len(markdown_excerpt("word " * 100, 20)) == 20
    assert markdown_excerpt("short", 20) == "short"
    assert markdown_excerpt("", 20) == ""
    assert markdown_excerpt(None, 20) == ""


def test_excerpt_in_a_template_is_escaped_not_markup():
    template = Template("{% load causeway %}{{ text|markdown_excerpt:80 }}")
    rendered = template.render(Context({"text": "a <script>alert(1)</script> &lt;b&gt; b"}))
    assert "<script>" not in rendered and "<b>" not in rendered
    assert "&lt;b&gt;" in rendered


def test_reused_converter_keeps_no_state_between_texts():
    # Footnote-like state and reference links must not leak from one text into the next.
    first = render_markdown("[x]: https://example.org/\n\nsee [x]")
    second = render_markdown("see [x]")
    assert 'href="https://example.org/"' in first
    assert "href" not in second


def test_threads_render_concurrently_without_mixing_output():
    results: dict[int, str] = {}

    def render(n: int) -> None:
        for _ in range(50):
            results[n] = render_markdown(f"**{n}** " + "text " * 200)

    threads = [threading.Thread(target=render, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for n, html in results.items():
        assert html.startswith(f"<p><strong>{n}</strong>")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("## Heading\n\nBody", "Heading Body"),
        ("> quoted *words* and __strong__", "quoted words and strong"),
        ("1. first\n2) second\n* third", "first second third"),
        (
            "column customer_id and _emphasis_ and snake_case_name",
            "column customer_id and emphasis and snake_case_name",
        ),
        ("![logo](x.png) see [docs][ref]\n\n[ref]: https://example.org", "logo see docs"),
        ("<https://example.org> and <span>inline</span> html", "https://example.org and inline html"),
        ("| a | b |\n|---|:---:|\n| 1 | 2 |", "a b 1 2"),
        ("```python\nprint(1)\n```\n\n---\n\n~~old~~ new", "print(1) old new"),
        ("2 \\* 3 \\_x\\_ &amp; `code`", "2 * 3 _x_ & code"),
    ],
)
def test_excerpt_reduces_markdown_constructs_to_their_text(text, expected):
    assert markdown_excerpt(text) == expected


@pytest.mark.parametrize(
    "text",
    ["Plain words, numbers 1.5 and (brackets).", "---\nabove", "+ plus item", "3) third", "a & b", "***\nrule"],
)
def test_plain_text_fast_path_agrees_with_the_full_rules(text):
    from apps.core import markdown

    full = text
    full = markdown._ESCAPED.sub(lambda m: chr(markdown._PRIVATE_USE + ord(m[1])), full)
    for pattern, replacement in markdown._EXCERPT_RULES:
        full = pattern.sub(replacement, full)
    expected = " ".join(markdown.html.unescape(full).split())
    assert markdown_excerpt(text) == expected
