"""When something happened, as people say it: "just now", "12 seconds ago", "2 days, 3 hours ago"."""

from django import template
from django.contrib.humanize.templatetags.humanize import naturaltime

register = template.Library()


@register.filter
def ago(value):
    """humanize's naturaltime, but for the last second, which it calls "now" ("trashed now")."""
    said = naturaltime(value)
    return "just now" if said == "now" else said
