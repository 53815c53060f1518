"""URLs of a photo's pages and files, worked out once per URL name instead of by reverse() each time.

A page of 60 cards needs three URLs per photo, and reverse() costs more than the rest of
a card; the pattern with a placeholder is reversed once (per script prefix) and filled in.
"""

import functools

from django.urls import get_script_prefix, reverse

_PLACEHOLDER = 987654321987


@functools.cache
def _pattern(name: str, kind: str | None, prefix: str) -> str:
    args = [_PLACEHOLDER] if kind is None else [_PLACEHOLDER, kind]
    return reverse(name, args=args).replace(str(_PLACEHOLDER), "{}")


def photo_url(name: str, pk: int, kind: str | None = None) -> str:
    """reverse(name, args=[pk]) or reverse(name, args=[pk, kind]), for URL names of one photo."""
    return _pattern(name, kind, get_script_prefix()).format(int(pk))
