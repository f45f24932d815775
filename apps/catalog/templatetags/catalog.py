"""Catalog template tags."""

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

_CLASSIFICATION_COLOURS = {"pii": "danger", "confidential": "warning", "public": "success"}
_PRIVATE = mark_safe('\n<span class="badge text-bg-dark"><i class="bi bi-lock"></i> private</span>')  # noqa: S308 — a constant


@register.simple_tag
def dataset_badges(dataset) -> SafeString:
    """A dataset's classification badge, and a lock when it is private. A tag rather than an
    included template: result lists show one per row."""
    colour = _CLASSIFICATION_COLOURS.get(dataset.classification, "secondary")
    badges = format_html('<span class="badge text-bg-{}">{}</span>', colour, dataset.get_classification_display())
    if dataset.visibility == "private":
        badges += _PRIVATE
    return badges
