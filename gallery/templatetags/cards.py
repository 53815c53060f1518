"""{% photo_card pk label ... %}, {% thumb_frame pk label %} and {% star_button pk ... %}: see gallery.cards."""

from django import template

from gallery import cards

register = template.Library()
register.simple_tag(cards.photo_card)
register.simple_tag(cards.thumb_frame)
register.simple_tag(cards.star_button)
