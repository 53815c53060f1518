"""The photo card of every grid (gallery, album, search results, similar photos) and a photo's star.

Written as Python f-strings rather than included templates: Django's template engine
spent a quarter of a text search's own time on its cards (bench.pages prints it), and
format_html twice what this takes (Django's escape checks each argument for lazy
strings). Text is escaped with html.escape, which is what django.utils.html.escape
calls; numbers are made ints or formatted, so nothing else reaches the page unescaped.
"""

from html import escape

from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

from gallery.storage import RENDITIONS
from gallery.urls_for_photos import photo_url

THUMB_EDGE = RENDITIONS["thumb"][0]  # the thumbnail's long side: a card's default size


def photo_card(
    pk: int,
    label: str,
    *,
    similarity: float | None = None,
    matched=(),
    size: int | None = None,
    byte_size: int | None = None,
    query: str = "",
) -> SafeString:
    """One photo's card: label (its title or file name), similarity (a search's score), matched (the
    fields its words were found in), size (of the thumbnail, px), byte_size (its file's, which the
    selection bar sums) and query (the list it belongs to, for the photo page's previous and next)."""
    pk, name = int(pk), escape(str(label))
    detail = photo_url("gallery:detail", pk) + (f"?{escape(query)}" if query else "")
    data_bytes = f' data-bytes="{int(byte_size)}"' if byte_size else ""
    # Not floatformat: it goes by way of Decimal and the active locale, the slowest part of a card.
    scored = isinstance(similarity, int | float)  # words alone found it: no similarity (a template passes "")
    score = f' <span class="score" title="similarity">{similarity:.3f}</span>' if scored else ""
    words = f'    <span class="caption matched">matched: {escape(", ".join(matched))}</span>\n' if matched else ""
    return mark_safe(  # every value above is escaped or a number
        f'<li class="card-photo" id="card-{pk}">\n'
        f'  <input type="checkbox" class="select-box" name="ids" value="{pk}" form="bulk-form"'
        f' aria-label="Select {name}"{data_bytes}>\n'
        f'  <a href="{detail}">\n'
        f"    {thumb_frame(pk, label, size)}\n"
        f'    <span class="caption">{escape(Truncator(label).chars(40))}{score}</span>\n'
        f"{words}"
        f"  </a>\n"
        f"  {star_button(pk, card=True)}\n"
        f"</li>"
    )


def thumb_frame(pk: int, label: str, size: int | None = None) -> SafeString:
    """A photo's thumbnail in its square frame, sized before it loads (size: px, the thumbnail's by
    default); the cards of the grid, the trash and the duplicate review all show it."""
    pk, size = int(pk), int(size or THUMB_EDGE)
    return mark_safe(  # a number, a URL of numbers and the escaped label
        f'<span class="frame"><img src="{photo_url("gallery:rendition", pk, "thumb")}" alt="{escape(str(label))}"'
        f' loading="lazy" decoding="async" width="{size}" height="{size}"></span>'
    )


def star_button(pk: int, *, starred: bool = False, card: bool = False, in_form: bool = False) -> SafeString:
    """A photo's star for the person looking. A card's (card) is the same for everyone, as cards are
    cached and shared: hidden until favourites.js sets its state from #my-favourites; elsewhere
    data-known marks a state rendered for this person. in_form: it submits the form around it
    (gallery/_star.html), which works without JavaScript; else it posts by htmx."""
    pk = int(pk)
    posts = "" if in_form else f' type="button" hx-post="{photo_url("gallery:favourite", pk)}" hx-swap="outerHTML"'
    return mark_safe(  # a number and fixed words
        f'<button class="star" name="on" value="{0 if starred else 1}" data-favourite="{pk}"'
        f' {"hidden" if card else "data-known"} aria-pressed="{"true" if starred else "false"}"'
        f' aria-label="Favourite" title="Favourite"{posts}>★</button>'
    )
