"""{{ pk|photo_url:"gallery:detail" }} and {{ pk|photo_url:"gallery:rendition thumb" }}: the photo card's URLs."""

from django import template

from gallery.urls_for_photos import photo_url as url_for

register = template.Library()


@register.filter
def photo_url(pk, name: str) -> str:
    name, _, kind = name.partition(" ")
    return url_for(name, pk, kind or None)
