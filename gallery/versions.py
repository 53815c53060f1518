"""The library's version: a number that changes whenever photos, metadata or tags change.

Pages and statistics cache what they compute under it. A change bumps it once its
transaction commits (one bump per transaction, however many rows it wrote). If a
process dies between commit and bump, caches stay stale only until they expire.
"""

import threading

from django.db import transaction
from django.db.models import F
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete

from gallery.models import Album, Image, LibraryVersion, Metadata, Tag
from gallery.signals import images_changed

NAME = "library"
_local = threading.local()


def library_version() -> int:
    return LibraryVersion.objects.filter(name=NAME).values_list("version", flat=True).first() or 0


def bump() -> None:
    LibraryVersion.objects.get_or_create(name=NAME)
    LibraryVersion.objects.filter(name=NAME).update(version=F("version") + 1)


class _PendingBump:
    def __init__(self):
        self.done = False

    def run(self) -> None:
        if not self.done:
            self.done = True
            bump()


def changed(**kwargs) -> None:
    """Bump the version when the current transaction commits (at once outside one)."""
    pending = getattr(_local, "pending", None)
    if pending is None or pending.done:
        # A rolled-back transaction leaves its bump pending: the next change reuses it,
        # and bumping once for both is all either needs.
        pending = _local.pending = _PendingBump()
    transaction.on_commit(pending.run)


def connect() -> None:
    for sender in (Image, Metadata, Tag, Album):  # a renamed tag or album changes what filters select
        post_save.connect(changed, sender=sender, dispatch_uid=f"gallery.version.save.{sender.__name__}")
    post_delete.connect(changed, sender=Image, dispatch_uid="gallery.version.delete")
    pre_delete.connect(changed, sender=Tag, dispatch_uid="gallery.version.tag_delete")
    m2m_changed.connect(changed, sender=Metadata.tags.through, dispatch_uid="gallery.version.tags")
    post_delete.connect(changed, sender=Album, dispatch_uid="gallery.version.album_delete")
    m2m_changed.connect(changed, sender=Album.photos.through, dispatch_uid="gallery.version.albums")
    images_changed.connect(changed, sender=Image, dispatch_uid="gallery.version.bulk")
