"""`{% share_button obj %}`: the Share button and its modal, shown only to those who may manage
the object's shares (templates/partials/share_button.html includes it in one line)."""

from __future__ import annotations

from django import template
from django.urls import reverse

from apps.accounts import sharing

register = template.Library()


@register.inclusion_tag("partials/share_button_modal.html", takes_context=True)
def share_button(context, obj) -> dict:
    request = context.get("request")
    user = getattr(request, "user", None)
    shareable = sharing.shareable_for_object(obj) if obj is not None else None
    if shareable is None or user is None or not user.is_authenticated or not shareable.can_manage(user, obj):
        return {"show": False}
    return {
        "show": True,
        "shareable": shareable,
        "object": obj,
        "dom_id": f"share-{shareable.kind}-{obj.pk}",
        "url": reverse("accounts:share", args=[shareable.kind, obj.pk]),
    }
