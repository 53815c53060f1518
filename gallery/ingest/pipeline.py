"""The ingest pipeline: hash, decode once, embed in batches, store; see gallery.ingest for the whole path."""

import hashlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from django.db import IntegrityError, transaction

from gallery import storage
from gallery.decoding import DecodedPhoto, DecodeError, NotAnImage, decode
from gallery.file_names import display_name
from gallery.hooks import embedding_deferred, get_vectorizer, open_index
from gallery.ingest.discover import Outcome, Source
from gallery.models import Image
from gallery.services import image_copies_found, image_create

log = logging.getLogger(__name__)

# How much lower than the model's threads the decode threads run (see _yield_to_the_model).
DECODE_NICENESS = 10
# A run of more files than this reads every hash the library holds, once; a smaller one (an upload)
# hashes its files first and looks up only those: at a million photos, reading them all took 1.5-3.7 s
# and ~300 MB, for each upload.
LOOK_UP_HASHES_UP_TO = 1000

NAME_NOT_UTF8 = (
    "its name is not UTF-8, and an in-place ingest keeps the path as text: rename it "
    "(convmv -f latin1 -t utf8 -r --notest FOLDER) or ingest without --in-place, which copies the photo"
)


@dataclass
class IngestReport:
    outcomes: list[Outcome] = field(default_factory=list)
    embedded: int = 0
    model_error: str = ""
    seconds: float = 0.0
    loading_seconds: float = 0.0  # of seconds, those spent loading the model and opening the index

    def count(self, status: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    @property
    def added(self) -> int:
        return self.count("added")

    @property
    def known(self) -> int:
        return self.count("known")

    @property
    def not_images(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "not_image"]

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def rate(self) -> float:
        return self.added / self.seconds if self.seconds else 0.0

    @property
    def working_rate(self) -> float:
        """Photos per second once the model was loaded: what a longer run approaches."""
        working = self.seconds - self.loading_seconds
        return self.added / working if working > 0 else 0.0


@dataclass
class _Prepared:
    source: Source
    sha256: str
    data: bytes | None
    photo: DecodedPhoto


# --- the pipeline -----------------------------------------------------------------


class Pipeline:
    def __init__(
        self,
        *,
        in_place: bool = False,
        category: str = "",
        tags: Iterable[str] = (),
        user=None,
        embed: bool = True,
        dry_run: bool = False,
        batch_size: int = 16,
        decode_threads: int = 2,
    ):
        self.in_place = in_place
        self.category = category.strip()[:64]
        self.tags = sorted({tag.strip().lower()[:64] for tag in tags if tag.strip()})
        self.user = user
        self.dry_run = dry_run
        self.batch_size = max(1, batch_size)
        self.decode_threads = max(1, decode_threads)
        self.embed = embed and not dry_run
        self.model_error = ""
        self._vectorizer = None
        self._vectorizer_loaded = False
        self.loading_seconds = 0.0

    @property
    def vectorizer(self):
        """The model, loaded when the first new photo needs it (a run of known photos never waits for it)."""
        if not self._vectorizer_loaded:
            started = time.perf_counter()
            self._vectorizer_loaded = True
            self._vectorizer = self._load_vectorizer() if self.embed else None
            self.loading_seconds = time.perf_counter() - started
        return self._vectorizer

    def _load_vectorizer(self):
        try:
            vectorizer = get_vectorizer()
            if vectorizer is not None:
                vectorizer.input_size  # loads the model now: a missing one is reported once
        except Exception as error:  # the model is optional for ingest: photos stay pending
            self.model_error = str(error)
            return None
        if vectorizer is not None:
            # Opening the index costs a second of imports; done with the model, the
            # decoders meanwhile run ahead, instead of in the first batch's commit.
            # An index that cannot be opened is not fatal: the vectors are kept in
            # SQLite and `reconcile` (or the worker) puts them in the index later.
            try:
                open_index(vectorizer.model_name)
            except Exception as error:
                log.warning("the index cannot be opened (%s); photos are indexed later", error)
        return vectorizer

    def run(
        self,
        sources: Iterable[Source],
        *,
        on_progress: Callable[[Outcome], None] | None = None,
        limit: int | None = None,
    ) -> IngestReport:
        """Ingest sources in order; with limit, stop once that many new photos are accepted."""
        report = IngestReport()
        loaded_before = self._vectorizer_loaded
        accepted = 0
        started = time.perf_counter()
        sources = list(sources)
        unchanged = self._unchanged_in_place() if self.in_place else {}
        known_sha = self._known_hashes(sources, unchanged)
        batch: list[_Prepared] = []

        def record(outcome: Outcome) -> None:
            report.outcomes.append(outcome)
            if on_progress:
                on_progress(outcome)

        # The model embeds one batch on its own thread while this one stores the batch
        # before (files, rows, the index). Storing is mostly Python, on one core at a
        # time: run after the model's call, it left a core idle much of the while.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed") as model_thread:
            embedding: tuple[list[_Prepared], Future] | None = None

            def hand_over(batch: list[_Prepared]) -> None:
                nonlocal embedding
                self.vectorizer  # loaded on this thread, which also opens the index
                started = (batch, model_thread.submit(self._embed, batch, report))
                if embedding is not None:
                    self._store(*embedding, report, record)
                embedding = started

            for item in self._prepare_all(sources, known_sha, unchanged):
                if isinstance(item, Outcome):
                    record(item)
                    continue
                if item.sha256 in known_sha:  # the same bytes twice in one run
                    path = item.source.path_text
                    record(
                        Outcome(
                            item.source.name,
                            "known",
                            "same bytes as another file in this run",
                            sha256=item.sha256,
                            path=path,
                        )
                    )
                    continue
                known_sha.add(item.sha256)
                accepted += 1
                if self.dry_run:
                    record(Outcome(item.source.name, "would_add"))
                else:
                    batch.append(item)
                    if len(batch) >= self.batch_size:
                        hand_over(batch)
                        batch = []
                if limit is not None and accepted >= limit:
                    break
            if batch:
                hand_over(batch)
            if embedding is not None:
                self._store(*embedding, report, record)
        if self.in_place and not self.dry_run:
            copies = [(o.sha256, o.path) for o in report.outcomes if o.status == "known" and o.sha256 and o.path]
            if copies:
                image_copies_found(copies)
        report.seconds = time.perf_counter() - started
        report.model_error = self.model_error or report.model_error
        if not loaded_before:
            report.loading_seconds = self.loading_seconds
        return report

    def _known_hashes(self, sources: list[Source], unchanged: dict) -> set[str]:
        """The sha256 of the library's photos, or of those among them that these few sources may repeat."""
        if len(sources) > LOOK_UP_HASHES_UP_TO:
            return set(Image.objects.values_list("sha256", flat=True))
        sources = [source for source in sources if not _unchanged(source, unchanged)]
        with ThreadPoolExecutor(max_workers=self.decode_threads, thread_name_prefix="hash") as pool:
            hashes = [sha256 for sha256 in pool.map(_sha256_or_none, sources) if sha256]
        return set(Image.objects.filter(sha256__in=hashes).values_list("sha256", flat=True)) if hashes else set()

    def _unchanged_in_place(self) -> dict[str, tuple[int, float]]:
        rows = Image.objects.filter(in_place=True).values_list("source_path", "source_size", "source_mtime")
        return {path: (size, mtime) for path, size, mtime in rows}

    def _prepare_all(self, sources, known_sha, unchanged) -> Iterator[_Prepared | Outcome]:
        """Prepare sources on decode threads, a bounded window ahead, yielding in order."""
        window = self.batch_size * 2
        with ThreadPoolExecutor(
            max_workers=self.decode_threads, thread_name_prefix="decode", initializer=_yield_to_the_model
        ) as pool:
            pending: deque[Future] = deque()
            iterator = iter(sources)
            try:
                for source in iterator:
                    pending.append(pool.submit(self._prepare, source, known_sha, unchanged))
                    if len(pending) >= window:
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
            except BaseException:
                for future in pending:
                    future.cancel()
                raise

    def _prepare(self, source: Source, known_sha: set[str], unchanged: dict) -> _Prepared | Outcome:
        try:
            if self.in_place and not source.path_is_text:
                return Outcome(source.name, "failed", NAME_NOT_UTF8)
            if _unchanged(source, unchanged):
                return Outcome(source.name, "known", "unchanged since last ingest")
            data = source.data if source.data is not None else source.path.read_bytes()
            sha256 = hashlib.sha256(data).hexdigest()
            if sha256 in known_sha:
                return Outcome(source.name, "known", "already in the library", sha256=sha256, path=source.path_text)
            return _Prepared(source, sha256, None if self.in_place else data, decode(data))
        except NotAnImage as error:
            return Outcome(source.name, "not_image", str(error))
        except DecodeError as error:
            return Outcome(source.name, "failed", str(error))
        except FileNotFoundError:
            return Outcome(source.name, "failed", "file vanished before it could be read")
        except OSError as error:
            return Outcome(source.name, "failed", f"cannot read: {error.strerror or error}")
        except Exception as error:  # one bad file never stops the run
            log.exception("unexpected error preparing %s", source.name)
            return Outcome(source.name, "failed", f"unexpected error: {type(error).__name__}: {error}")

    def _embed(self, batch: list[_Prepared], report: IngestReport) -> np.ndarray | None:
        """The batch's vectors (on the model's thread), or None without a model or when it failed."""
        vectorizer = self.vectorizer
        if vectorizer is None:
            return None
        try:
            size = vectorizer.input_size
            return vectorizer.encode_pixels(
                np.stack([vectorizer.preprocess(item.photo.pixels_for(size)) for item in batch])
            )
        except Exception as error:  # store the photos anyway; their embeddings stay pending
            log.exception("embedding a batch failed")
            report.model_error = report.model_error or f"embedding failed: {error}"
            return None

    def _store(self, batch: list[_Prepared], embedded: Future, report: IngestReport, record) -> None:
        vectors = embedded.result()
        if vectors is not None:
            report.embedded += len(batch)
        # Without a vectorizer (--no-embed, or no model) the photos wait for
        # `reconcile`; the commit must not try the model again for every batch.
        with embedding_deferred(self.vectorizer is None):
            self._store_batch(batch, vectors, report, record)

    def _store_batch(self, batch: list[_Prepared], vectors: np.ndarray | None, report: IngestReport, record) -> None:
        written: list[_Prepared] = []
        for item in batch:
            try:
                self._write_files(item)
                written.append(item)
            except OSError as error:
                self._remove_files(item)
                record(Outcome(item.source.name, "failed", f"cannot write to storage: {error.strerror or error}"))
        vector_of = dict(zip((id(item) for item in batch), vectors)) if vectors is not None else {}
        try:
            with transaction.atomic():
                created = [self._create_rows(item, vector_of.get(id(item))) for item in written]
        except IntegrityError:
            # Another process added one of these photos meanwhile: store them one by one.
            created = []
            for item in written:
                try:
                    with transaction.atomic():
                        created.append(self._create_rows(item, vector_of.get(id(item))))
                except IntegrityError:
                    created.append(None)
        for item, image in zip(written, created):
            if image is None:
                record(Outcome(item.source.name, "known", "added by another process meanwhile", sha256=item.sha256))
            else:
                record(Outcome(item.source.name, "added", image_id=image.pk))

    def _write_files(self, item: _Prepared) -> None:
        if not self.in_place:
            storage.write_atomic(storage.original_relpath(item.sha256, item.photo.format), item.data)
        for kind, data in item.photo.renditions.items():
            storage.write_atomic(storage.rendition_relpath(item.sha256, kind), data)

    def _remove_files(self, item: _Prepared) -> None:
        paths = [storage.media_root() / storage.rendition_relpath(item.sha256, kind) for kind in storage.RENDITIONS]
        if not self.in_place:
            paths.append(storage.media_root() / storage.original_relpath(item.sha256, item.photo.format))
        storage.delete_files(paths)

    def _create_rows(self, item: _Prepared, vector: np.ndarray | None) -> Image:
        photo, source, exif = item.photo, item.source, item.photo.exif
        facts = {
            "sha256": item.sha256,
            "file": source.path_text if self.in_place else storage.original_relpath(item.sha256, photo.format),
            "in_place": self.in_place,
            "original_name": display_name(source.shown_name),
            "source_path": "" if source.uploaded else source.path_text[:1024],
            "source_size": source.size if self.in_place else None,
            "source_mtime": source.mtime if self.in_place else None,
            "format": photo.format,
            "width": photo.width,
            "height": photo.height,
            "byte_size": source.size if source.size is not None else len(item.data or b""),
            "phash": photo.phash,
            "pixel_hash": photo.pixel_hash,
            "added_by": self.user,
        }
        metadata = {
            "category": self.category,
            "camera_make": exif.camera_make,
            "camera_model": exif.camera_model,
            "lens": exif.lens,
            "taken_at": exif.taken_at,
            "latitude": exif.latitude,
            "longitude": exif.longitude,
            "extra": exif.extra,
        }
        return image_create(
            facts=facts,
            metadata=metadata,
            tags=self.tags,
            vector=vector,
            model_name=self.vectorizer.model_name if vector is not None else "",
        )


def _unchanged(source: Source, unchanged: dict) -> bool:
    """An in-place file with the size and time it had when it was ingested."""
    return source.path is not None and unchanged.get(source.path_text) == (source.size, source.mtime)


def _sha256_or_none(source: Source) -> str | None:
    """A source's sha256; None when it cannot be read (the run reports why when it reads it)."""
    if source.data is not None:
        return hashlib.sha256(source.data).hexdigest()
    try:
        with open(source.path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return None


def _yield_to_the_model() -> None:
    """Lower this decode thread's priority below the model's threads (Linux: nice is per thread).

    The model's threads meet at a barrier after every layer, so one of them waiting
    for a core behind a decode thread stalls them all. At equal priority that cost
    a tenth of the throughput: 25 photos/s against 27.5 with the decode threads at
    nice 10 (`bench.ingest`, 480 photos); the decode threads still get every cycle
    the model leaves.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), DECODE_NICENESS)
    except (AttributeError, OSError):  # not Linux: threads share the process's priority
        pass
