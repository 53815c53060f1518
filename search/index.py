"""The vector index: a thin wrapper over Chroma, embedded, in memory, or a server.

Chroma is a derived index. Everything in it can be rebuilt from SQLite (see
`search.sync`). ids are Image primary keys as strings; one collection per model,
cosine space, and Chroma never embeds anything itself.

Chroma is thread-safe but not process-safe: a long-lived embedded client does not
see vectors another process added, and two processes writing one folder at once
corrupt it. In embedded mode every read takes a shared file lock and every write an
exclusive one, and `refresh()` reopens the client (about 8 ms) when the caller
learns from SQLite that another process wrote. With CHROMA_URL the server
serialises everything and none of this is needed.
"""

import contextlib
import fcntl
import functools
import hashlib
import logging
import re
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from search.errors import IndexUnavailable

log = logging.getLogger(__name__)


def collection_name(model_name: str) -> str:
    """Return a valid Chroma collection name for a model id or folder, stable across runs."""
    short = Path(model_name.rstrip("/")).name or "model"
    slug = re.sub(r"[^a-zA-Z0-9._-]+", "-", short).strip("-._")[:40] or "model"
    digest = hashlib.sha1(model_name.encode()).hexdigest()[:8]
    return f"imgsim-{slug}-{digest}"


class VectorIndex:
    """What imgsim needs from a vector index: vectors by id, one collection per model, and metadata beside them.

    ids are strings of Image primary keys; similarity is 1 - cosine distance. In a
    process-shared store, `reading()` and `writing()` hold whatever lock it needs;
    `refresh()` makes a reader see other processes' writes.
    """

    mode: str = "memory"
    seen_generation: int | None = None

    def reading(self):
        return contextlib.nullcontext()

    def writing(self):
        return contextlib.nullcontext()

    def refresh(self) -> None:
        pass

    def folder_lost(self) -> bool:
        return False

    def collection(self, model_name: str):
        raise NotImplementedError

    def upsert(self, model_name: str, ids: list, vectors: np.ndarray, metadatas: list[dict | None]) -> None:
        raise NotImplementedError

    def delete(self, model_name: str, ids: Iterable) -> None:
        raise NotImplementedError

    def query(
        self,
        model_name: str,
        vector: np.ndarray,
        n_results: int,
        where: dict | None = None,
        *,
        with_metadata: bool = False,
    ) -> list:
        raise NotImplementedError

    def get(self, model_name: str, ids: list | None = None, *, with_vectors: bool = False) -> dict:
        raise NotImplementedError

    def ids(self, model_name: str) -> set[str]:
        raise NotImplementedError

    def present(self, model_name: str, ids: list) -> set[str]:
        """Which of these ids the index holds (as strings)."""
        return set(self.get(model_name, ids))

    def count(self, model_name: str) -> int:
        raise NotImplementedError

    def drop(self, model_name: str) -> None:
        raise NotImplementedError

    def rebuild(
        self, model_name: str, batches: Iterable[tuple[list, np.ndarray, list[dict | None]]], *, restart: bool = False
    ) -> int:
        """Replace the model's collection by the (ids, vectors, metadatas) batches given.

        This default drops first and has nothing to go on from (returns 0); a backend
        that can should build beside the old collection and swap, so a failure
        half-way leaves the old one serving, and resume a rebuild that stopped.
        """
        self.drop(model_name)
        for ids, vectors, metadatas in batches:
            self.upsert(model_name, ids, vectors, metadatas)
        return 0


class ChromaIndex(VectorIndex):
    """Vectors by id (any string-able key) in one Chroma collection per model.

    `collection` fixes the collection name (the standalone ChromaDBBackend); by
    default each model gets its own, named after it.
    """

    def __init__(
        self,
        *,
        path: str | None = None,
        url: str | None = None,
        collection: str | None = None,
        hnsw: dict | None = None,
    ):
        self.path = Path(path) if path and not url else None
        self.url = url
        self.fixed_collection = collection
        # HNSW's parameters: max_neighbors and ef_construction shape a new graph (reindex builds one),
        # ef_search is how much of it a query explores: changed on an existing collection when it differs.
        self.hnsw = {**HNSW_DEFAULTS, **(hnsw or {})}
        self._lock = threading.RLock()
        self._client = None
        self._collections: dict[str, object] = {}
        # Which index generation (see search.sync) this process's client has seen.
        self.seen_generation: int | None = None

    @property
    def mode(self) -> str:
        return "server" if self.url else "embedded" if self.path else "memory"

    def folder_lost(self) -> bool:
        """An embedded index whose folder is gone (deleted, or a data dir restored without it)."""
        return self.mode == "embedded" and not (self.path / "chroma.sqlite3").exists()

    def _connect(self):
        import chromadb  # heavy: only when the index is first used
        from chromadb.config import Settings

        chroma_settings = Settings(anonymized_telemetry=False, allow_reset=False)
        try:
            if self.url:
                from urllib.parse import urlparse

                parsed = urlparse(self.url)
                return chromadb.HttpClient(
                    host=parsed.hostname,
                    port=parsed.port or (443 if parsed.scheme == "https" else 80),
                    ssl=parsed.scheme == "https",
                    settings=chroma_settings,
                )
            if self.path:
                self.path.mkdir(parents=True, exist_ok=True)
                return chromadb.PersistentClient(str(self.path), settings=chroma_settings)
            return chromadb.EphemeralClient(settings=chroma_settings)
        except Exception as error:
            raise IndexUnavailable(self._unavailable_message(error)) from error

    def _unavailable_message(self, error: Exception) -> str:
        where = f"the Chroma server at {self.url}" if self.url else f"the index folder {self.path}"
        hint = (
            "Start it with `chroma run --path DATA_DIR/chroma`, or unset CHROMA_URL."
            if self.url
            else "Check the folder's permissions, or run `python manage.py reindex` to rebuild it."
        )
        return f"Cannot open {where}: {error}. {hint}"

    def client(self):
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._connect()
        return self._client

    def refresh(self) -> None:
        """Reopen the embedded client so it sees what other processes wrote."""
        with self._lock:
            if self._client is not None and self.mode == "embedded":
                with contextlib.suppress(Exception):
                    self._client.close()
                self._client = None
            self._collections.clear()

    @contextlib.contextmanager
    def _file_lock(self, kind: int) -> Iterator[None]:
        if self.mode != "embedded":
            yield
            return
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".imgsim-lock", "a") as handle:
            fcntl.flock(handle, kind)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def reading(self):
        """Hold while reading: other processes may not write meanwhile (embedded mode)."""
        return self._file_lock(fcntl.LOCK_SH)

    def writing(self):
        """Hold while writing: nobody else reads or writes meanwhile (embedded mode)."""
        return self._file_lock(fcntl.LOCK_EX)

    def collection_name(self, model_name: str) -> str:
        return self.fixed_collection or collection_name(model_name)

    def _open(self, name: str, model_name: str, *, create_only: bool = False):
        options = {
            "configuration": {"hnsw": {"space": "cosine", **self.hnsw}},
            "metadata": {"model": model_name[:500]},
            "embedding_function": None,
        }
        try:
            client = self.client()
            if create_only:
                return client.create_collection(name, **options)
            found = _when_unlocked(lambda: client.get_or_create_collection(name, **options))
            if _hnsw_of(found).get("ef_search") != self.hnsw["ef_search"]:
                _when_unlocked(lambda: found.modify(configuration={"hnsw": {"ef_search": self.hnsw["ef_search"]}}))
                found = client.get_collection(name, embedding_function=None)
            return found
        except IndexUnavailable:
            raise
        except Exception as error:
            raise IndexUnavailable(self._unavailable_message(error)) from error

    def collection(self, model_name: str):
        name = self.collection_name(model_name)
        found = self._collections.get(name)
        if found is None:
            with self._lock:
                found = self._collections[name] = self._open(name, model_name)
        return found

    def _on_collection(self, model_name: str, action):
        """Run action(collection); if the collection has gone (rebuilt by another process, or a
        Chroma server that lost its data), open it again (empty if it is gone for good) and retry once."""
        try:
            return action(self.collection(model_name))
        except Exception as error:
            if not _collection_gone(error):
                raise
            log.warning("collection for %s has gone (%s); opening it again", model_name, error)
            self._collections.pop(self.collection_name(model_name), None)
            return action(self.collection(model_name))

    def rebuild(self, model_name: str, batches, *, restart: bool = False) -> int:
        """Build the collection anew beside the old one, then swap: until the swap, the old one serves.

        A rebuild that stopped half-way (killed, out of disk) leaves its collection
        behind, and the next one goes on from it unless restart: a photo it holds
        gets its vector compared and its metadata brought up to date instead of going
        into the graph again, the expensive part, and a photo gone since is taken out.
        Returns how many photos the stopped rebuild had written.
        """
        name = self.collection_name(model_name)
        target = None if restart else self._stopped_rebuild(model_name)
        held = target.count() if target is not None else 0
        if target is None:
            with contextlib.suppress(Exception):  # a leftover that does not fit: start over
                self.client().delete_collection(_rebuild_name(name))
            target = self._open(_rebuild_name(name), model_name, create_only=True)
        left, written = held, []
        for ids, vectors, metadatas in batches:
            present = target.get(ids=[str(pk) for pk in ids], include=[])["ids"] if left else []
            left -= len(present)
            self._upsert_into(target, ids, vectors, metadatas, fresh=not present)
            if held:
                written.append(np.asarray(ids, dtype=np.int64))
        if left:  # photos deleted or trashed since it stopped: the only case that lists every id
            stored = np.fromiter((int(pk) for pk in self._ids_in(target)), dtype=np.int64)
            self._remove(target, np.setdiff1d(stored, np.concatenate([np.zeros(0, np.int64), *written])).tolist())
        with self._lock:
            self._collections.pop(name, None)
            with contextlib.suppress(Exception):  # absent already is fine
                self.client().delete_collection(name)
            target.modify(name=name)
        return held

    def _stopped_rebuild(self, model_name: str):
        """The collection a stopped rebuild left, if it was built with today's graph parameters."""
        name = _rebuild_name(self.collection_name(model_name))
        try:
            found = self.client().get_collection(name, embedding_function=None)
        except Exception:  # none left behind (Chroma says NotFound; a server may say it otherwise)
            return None
        shape = ("space", "max_neighbors", "ef_construction")
        wanted = {"space": "cosine", **self.hnsw}
        return found if all(_hnsw_of(found).get(key) == wanted.get(key) for key in shape) else None

    def max_batch_size(self) -> int:
        try:
            return max(1, min(int(self.client().get_max_batch_size()), 5000))
        except Exception:
            return 1000

    def _upsert_into(
        self, collection, ids: list, vectors: np.ndarray, metadatas: list[dict | None], *, fresh: bool = False
    ) -> None:
        """Write vectors and metadata; for photos whose vector Chroma already holds, the metadata alone.

        Rewriting a vector re-inserts it into the HNSW graph, which costs ~20x a
        metadata update (bench.bulk): a bulk tag of 10,000 photos would spend its
        time re-adding unchanged vectors. fresh: the collection holds none of these ids
        (a rebuild), so nothing is looked up first.
        """
        step = self.max_batch_size()
        for start in range(0, len(ids), step):
            chunk = [str(pk) for pk in ids[start : start + step]]
            chunk_vectors = np.asarray(vectors[start : start + step], dtype=np.float32)
            chunk_metadata = [_clean_metadata(m) for m in metadatas[start : start + step]]
            if fresh:  # nothing to merge with: add skips upsert's lookup of every id (a rebuild of a million, -11%)
                collection.add(ids=chunk, embeddings=chunk_vectors, metadatas=[_stored(m) for m in chunk_metadata])
                continue
            same, current = _unchanged(collection, chunk, chunk_vectors, chunk_metadata)
            update = [i for i, pk in enumerate(chunk) if pk in same and pk not in current and chunk_metadata[i]]
            if update:  # update merges keys; _clean_metadata sends removed ones as None
                collection.update(ids=[chunk[i] for i in update], metadatas=[chunk_metadata[i] for i in update])
            rest = [i for i, pk in enumerate(chunk) if pk not in same or (pk not in current and not chunk_metadata[i])]
            if rest:
                collection.upsert(
                    ids=[chunk[i] for i in rest],
                    embeddings=chunk_vectors[rest],
                    metadatas=[chunk_metadata[i] for i in rest],
                )

    def upsert(self, model_name: str, ids: list, vectors: np.ndarray, metadatas: list[dict | None]) -> None:
        if ids:
            self._on_collection(model_name, lambda collection: self._upsert_into(collection, ids, vectors, metadatas))

    def delete(self, model_name: str, ids: Iterable) -> None:
        ids = list(ids)
        self._on_collection(model_name, lambda collection: self._remove(collection, ids))

    def _remove(self, collection, ids: list) -> None:
        ids = [str(pk) for pk in ids]
        step = self.max_batch_size()
        for start in range(0, len(ids), step):
            collection.delete(ids=ids[start : start + step])

    def query(
        self,
        model_name: str,
        vector: np.ndarray,
        n_results: int,
        where: dict | None = None,
        *,
        with_metadata: bool = False,
    ):
        """Return [(id, similarity)] best first (ids as strings); similarity = 1 - cosine distance.

        With with_metadata, [(id, similarity, metadata)].
        """
        if n_results <= 0:
            return []
        result = self._on_collection(
            model_name,
            lambda collection: collection.query(
                query_embeddings=[np.asarray(vector, dtype=np.float32)],
                n_results=n_results,
                where=where or None,
                include=["distances", "metadatas"] if with_metadata else ["distances"],
            ),
        )
        pairs = zip(result["ids"][0], result["distances"][0])
        if with_metadata:
            return [(pk, 1.0 - float(d), m or {}) for (pk, d), m in zip(pairs, result["metadatas"][0])]
        return [(pk, 1.0 - float(d)) for pk, d in pairs]

    def get(self, model_name: str, ids: list | None = None, *, with_vectors: bool = False):
        """Return {id: (metadata, vector or None)} for the given ids (or all, paged)."""
        collection = self.collection(model_name)
        include = ["metadatas", "embeddings"] if with_vectors else ["metadatas"]
        found = {}
        if ids is not None:
            batches = [ids[i : i + 5000] for i in range(0, len(ids), 5000)]
            pages = (collection.get(ids=[str(pk) for pk in batch], include=include) for batch in batches)
        else:
            pages = self._pages(collection, include)
        for page in pages:
            vectors = page.get("embeddings") if with_vectors else None
            for position, pk in enumerate(page["ids"]):
                vector = np.asarray(vectors[position], dtype=np.float32) if vectors is not None else None
                found[pk] = (page["metadatas"][position] or {}, vector)
        return found

    @staticmethod
    def _pages(collection, include, page_size: int = 5000):
        offset = 0
        while True:
            page = collection.get(include=include, limit=page_size, offset=offset)
            if not page["ids"]:
                return
            yield page
            offset += len(page["ids"])

    def ids(self, model_name: str) -> set[str]:
        return self._ids_in(self.collection(model_name))

    def _ids_in(self, collection) -> set[str]:
        return {pk for page in self._pages(collection, []) for pk in page["ids"]}

    def present(self, model_name: str, ids: list) -> set[str]:
        # By id, nothing included: ~7 us an id at a million, where listing all ids page by page
        # (Chroma's offset walks from the start each time) took a minute.
        collection = self.collection(model_name)
        batches = (ids[i : i + 10_000] for i in range(0, len(ids), 10_000))
        return {pk for batch in batches for pk in collection.get(ids=[str(pk) for pk in batch], include=[])["ids"]}

    def count(self, model_name: str) -> int:
        return self._on_collection(model_name, lambda collection: collection.count())

    def drop(self, model_name: str) -> None:
        name = self.collection_name(model_name)
        with self._lock:
            self._collections.pop(name, None)
            with contextlib.suppress(Exception):  # absent already is fine
                self.client().delete_collection(name)


def _rebuild_name(name: str) -> str:
    return f"{name[:50]}-rebuild"


def _when_unlocked(action):
    """action(), again after a moment while Chroma's SQLite says "database is locked".

    Chroma keeps its catalogue in SQLite with a rollback journal, where a connection
    that read and then writes while another is committing is refused at once instead
    of waiting (SQLite's deadlock rule). Opening a collection writes when it creates it
    or changes its ef_search, and met that in a test run on a loaded machine, right
    after the client before it was closed. The catalogue write is tiny: a retry passes.
    """
    for delay in (0.02, 0.05, 0.1, 0.2, 0.5):
        try:
            return action()
        except Exception as error:
            if "database is locked" not in str(error):
                raise
            log.info("Chroma's database is locked; trying again in %s s (%s)", delay, error)
            time.sleep(delay)
    return action()


def _collection_gone(error: Exception) -> bool:
    """Whether Chroma says the collection no longer exists (its id is stale, or it was deleted)."""
    from chromadb.errors import NotFoundError

    return isinstance(error, NotFoundError) or "does not exist" in str(error)


def _unchanged(collection, ids: list[str], vectors: np.ndarray, metadatas: list[dict | None]):
    """(ids whose stored vector equals the new one, those of them whose metadata is as wanted too).

    The read costs far less than updating metadata that is already right: skipping
    those updates made a reindex going on from a stopped one 3x faster over the part
    already written (bench.scale --resume).
    """
    stored = collection.get(ids=ids, include=["embeddings", "metadatas"])
    position = {pk: row for row, pk in enumerate(ids)}
    same, current = set(), set()
    for pk, vector, metadata in zip(stored["ids"], stored["embeddings"], stored["metadatas"]):
        row = position[pk]
        if np.allclose(np.asarray(vector, dtype=np.float32), vectors[row], atol=1e-6):
            same.add(pk)
            if (metadata or {}) == (_stored(metadatas[row]) or {}):
                current.add(pk)
    return same, current


def _clean_metadata(metadata: dict | None) -> dict | None:
    """Prepare metadata for Chroma: empty values become None.

    Chroma refuses empty strings and lists, and an upsert merges keys into what is
    stored, so a key that must disappear (a removed category) is sent as None.
    """
    cleaned = {key: None if value in ("", []) else value for key, value in (metadata or {}).items()}
    return cleaned if any(value is not None for value in cleaned.values()) else None


def _stored(metadata: dict | None) -> dict | None:
    """Cleaned metadata for a new entry: the keys to remove (None) have nothing to remove from."""
    kept = {key: value for key, value in (metadata or {}).items() if value is not None}
    return kept or None


# Chroma's defaults but ef_search (100): 256 finds the exact top 10 of image-like queries and 99.6% of
# text-like ones at 100k photos, where 128 found 95% of the text-like ones (bench.scale).
HNSW_DEFAULTS = {"ef_search": 256, "ef_construction": 100, "max_neighbors": 16}


def _hnsw_of(collection) -> dict:
    configuration = getattr(collection, "configuration_json", None) or {}
    return configuration.get("hnsw") or {}


@functools.cache
def get_index() -> VectorIndex:
    """Build the configured vector index (one per process)."""
    from search.backends import build_backend

    return build_backend("IMGSIM_INDEX", VectorIndex)
