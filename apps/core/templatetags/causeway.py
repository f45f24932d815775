from django import template

from apps.core.markdown import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text):
    return render_markdown(text)


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
