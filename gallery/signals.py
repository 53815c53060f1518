"""Signals the gallery sends beside Django's model signals.

Bulk writes (bulk_create, QuerySet.update) send no post_save: code that makes them
sends `images_changed` inside the same transaction, naming the photos whose derived
copies (search's vector index) must follow. Receivers must not do the work inside
the transaction; search records it and defers it with on_commit.
"""

from django.dispatch import Signal

images_changed = Signal()  # sender=Image, image_ids=[...]
