"""`{% challenge_announcements challenge as announcements %}`: the banners the current user
sees on a challenge's pages (templates/challenges/_announcements.html, from base.html)."""

from __future__ import annotations

from typing import Any

from django import template

from challenges.announcements import shown_to
from challenges.models import Announcement

register = template.Library()


@register.simple_tag(takes_context=True)
def challenge_announcements(context: Any, challenge: Any) -> list[Announcement]:
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    return shown_to(challenge=challenge, user=user)
