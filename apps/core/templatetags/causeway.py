from django import template

from apps.core.markdown import markdown_excerpt, render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text):
    return render_markdown(text)


@register.filter(name="markdown_excerpt")
def markdown_excerpt_filter(text, length: int = 160):
    """Plain-text start of a Markdown text, for one line in a result list (autoescaped)."""
    return markdown_excerpt(text, int(length))


@register.filter
def status_badge(status: str) -> str:
    """Bootstrap colour for a status word."""
    return {
        "queued": "secondary",
        "running": "primary",
        "succeeded": "success",
        "failed": "danger",
        "cancelled": "warning",
        "active": "success",
        "revoked": "secondary",
        "expired": "warning",
    }.get(str(status), "secondary")


@register.filter
def get_item(mapping, key):
    """`mapping[key]` in templates (dicts keyed by ids or column names)."""
    if not mapping:
        return None
    return mapping.get(key)
