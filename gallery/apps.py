from django.apps import AppConfig


class GalleryConfig(AppConfig):
    name = "gallery"
    verbose_name = "Photo library"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        _return_big_blocks_to_the_system()
        from django.db.models.signals import post_migrate

        from gallery import versions, words
        from gallery.roles import ensure_roles_after_migrate

        post_migrate.connect(ensure_roles_after_migrate, sender=self, dispatch_uid="gallery.ensure_roles")
        versions.connect()
        words.connect()


def _return_big_blocks_to_the_system() -> None:
    """Ask glibc to map Pillow's 16 MB image blocks directly, and so give them back when freed,
    while the smaller buffers of an ordinary photo stay in the heap for the next one.

    By default glibc raises its mapping threshold after the first big free, and a
    decode's 16 MB blocks then stay in the arena of the thread that freed them: three
    169 MP decodes on three threads grew a process by 941 MB, and 695 MB with this (one
    decode's worth), as tests/test_query_images.py checks. Below the threshold, the heap
    keeps up to 32 MB free rather than handing it back at once: the 12 MP photo's
    buffers (a few MB each) are then reused instead of faulted in page by page, which
    was a third of its decode time (bench.ingest).
    """
    import ctypes
    import sys

    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6")
            libc.mallopt(-3, 15 << 20)  # -3: M_MMAP_THRESHOLD, under Pillow's 16 MB block
            libc.mallopt(-1, 32 << 20)  # -1: M_TRIM_THRESHOLD
        except (OSError, AttributeError):  # not glibc (musl, say): keep its default
            pass
