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
