"""Receivers that keep the index in step with gallery's models.

Inside the writing transaction a receiver only records the image id in the outbox
(durable, rolled back with the change). The first `on_commit` callback of the
transaction then syncs every id the transaction touched in one batch. A rollback
discards the callbacks and the outbox rows together, so no vector is written for a
change that never happened.
"""

import logging
import threading

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete

from gallery.models import Album, Image, Metadata, Tag
from gallery.signals import images_changed
from search.models import IndexOutbox
from search.sync import embed_on_commit

log = logging.getLogger(__name__)
_local = threading.local()


class _PendingBatch:
    """The image ids one transaction changed; synced once, by whichever callback runs first."""

    def __init__(self):
        self.ids: set[int] = set()
        self.done = False
        self.embed = True

    def run(self) -> None:
        if self.done:
            return
        self.done = True
        if getattr(_local, "batch", None) is self:
            _local.batch = None
        from search.sync import index_writes_here, sync_images

        try:
            if not index_writes_here():  # the worker syncs them, from their outbox rows
                from search.tasks import request_index_work

                request_index_work()
                return
            report = sync_images(self.ids, embed=self.embed)
            if report.left_pending:
                from search.tasks import request_index_work

                request_index_work()
        except Exception:
            # The change is committed and its outbox rows remain. A request must not fail
            # because the index did: the rows are retried, with back-off, until it is back.
            log.exception("index sync failed for %d image(s); retrying in the background", len(self.ids))
            from search.tasks import retry_outbox_soon

            retry_outbox_soon()


def _current_batch() -> _PendingBatch:
    batch = getattr(_local, "batch", None)
    if batch is None or batch.done:
        # A rolled-back transaction discards its callbacks and outbox rows but leaves its
        # batch here: the next transaction reuses it, and syncing its ids too is harmless.
        batch = _local.batch = _PendingBatch()
    return batch


def _record(*image_ids: int) -> None:
    batch = _current_batch()
    # One outbox row per change, even for an id the batch has: its earlier row may have
    # been rolled back with an earlier transaction.
    IndexOutbox.objects.bulk_create([IndexOutbox(image_id=image_id) for image_id in image_ids])
    batch.ids.update(image_ids)
    batch.embed = batch.embed and embed_on_commit()
    # Registered for every change, not once: a savepoint rollback may discard some
    # callbacks, and whichever survives syncs the whole batch (extra ids are harmless).
    transaction.on_commit(batch.run)


def image_saved(sender, instance: Image, raw: bool = False, **kwargs) -> None:
    if not raw:
        _record(instance.pk)


def image_deleted(sender, instance: Image, **kwargs) -> None:
    _record(instance.pk)


def metadata_saved(sender, instance: Metadata, raw: bool = False, **kwargs) -> None:
    if not raw:
        _record(instance.image_id)


def tags_changed(sender, instance, action: str, reverse: bool, pk_set, **kwargs) -> None:
    if not reverse:
        if action in {"post_add", "post_remove", "post_clear"}:
            _record(instance.image_id)
    elif action in {"post_add", "post_remove"}:
        # tag.photos.add(...): the instance is a Tag and pk_set names metadata rows.
        for image_id in pk_set:
            _record(image_id)
    elif action == "pre_clear":
        for image_id in list(instance.photos.values_list("image_id", flat=True)):
            _record(image_id)


def album_members_changed(sender, instance, action: str, reverse: bool, pk_set, **kwargs) -> None:
    # album.photos.add(...) names images in pk_set; image.albums.add(...) is the image itself.
    if action in {"post_add", "post_remove"}:
        _record(*([instance.pk] if reverse else pk_set))
    elif action == "pre_clear":
        _record(*([instance.pk] if reverse else instance.photos.values_list("pk", flat=True)))


def images_bulk_changed(sender, image_ids, **kwargs) -> None:
    _record(*image_ids)


def tag_saved(sender, instance: Tag, created: bool, raw: bool = False, **kwargs) -> None:
    # A renamed tag (in the admin) changes every photo that has it: their index metadata too.
    if not created and not raw:
        for image_id in list(instance.photos.values_list("image_id", flat=True)):
            _record(image_id)


def tag_deleting(sender, instance: Tag, **kwargs) -> None:
    # Deleting a tag removes its links by cascade, which sends no m2m_changed.
    for image_id in list(instance.photos.values_list("image_id", flat=True)):
        _record(image_id)


def connect() -> None:
    post_save.connect(image_saved, sender=Image, dispatch_uid="search.image_saved")
    post_delete.connect(image_deleted, sender=Image, dispatch_uid="search.image_deleted")
    post_save.connect(metadata_saved, sender=Metadata, dispatch_uid="search.metadata_saved")
    m2m_changed.connect(tags_changed, sender=Metadata.tags.through, dispatch_uid="search.tags_changed")
    pre_delete.connect(tag_deleting, sender=Tag, dispatch_uid="search.tag_deleting")
    post_save.connect(tag_saved, sender=Tag, dispatch_uid="search.tag_saved")
    m2m_changed.connect(album_members_changed, sender=Album.photos.through, dispatch_uid="search.album_members")
    images_changed.connect(images_bulk_changed, sender=Image, dispatch_uid="search.images_bulk_changed")
