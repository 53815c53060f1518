"""The product brief's `ChromaDBBackend`: a standalone toolkit over one Chroma collection.

    from search.standalone import ChromaDBBackend
    backend = ChromaDBBackend(collection_name="my_images", persist_directory="./my_vector_db")
    backend.add_images_from_directory("./images", max_images=100)
    for result in backend.find_similar(query_text="cat photo", top_k=5, threshold=0.2):
        print(f"{result['filename']}: {result['similarity']:.3f}")

Unlike `search.python_api` it needs no library database: files stay where they are, and
everything (path, size, EXIF, your metadata, the vector) lives in the collection.
Without persist_directory the collection lasts as long as the backend (in a private
temporary folder: Chroma's in-memory clients share one store per process, so two
"in-memory" backends would see each other's images); handy in notebooks and tests.
It shares the decoder, embedder, filter validation and Chroma wrapper with the web
app, and needs no Django settings: a bare notebook can import it.
"""

import base64
import gzip
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np

from gallery.filters import to_chroma, validate
from search.embeddings import Embedder, TransformersEmbedder, get_embedder
from search.errors import InvalidQuery
from search.index import ChromaIndex

# Chroma's rule for collection names, checked here so the error says what is wrong with the name.
_VALID_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")
EXPORT_FORMAT = "imgsim.chromadb-backend"
EXPORT_VERSION = 1
DEFAULT_EXTENSIONS = [".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff", ".bmp", ".heic", ".heif"]


class ChromaDBBackend:
    def __init__(
        self,
        collection_name: str = "images",
        persist_directory: str | Path | None = None,
        embedding_model: str | None = None,
        *,
        embedder: Embedder | None = None,
        reembed: bool = False,
    ):
        _ensure_settings()
        if not isinstance(collection_name, str) or not _VALID_NAME.match(collection_name) or ".." in collection_name:
            raise InvalidQuery(
                f"collection_name {collection_name!r} is not a name Chroma accepts: 3-512 characters of letters, "
                "digits, '.', '_' and '-', starting and ending with a letter or digit (e.g. 'my_images')"
            )
        self.collection_name = collection_name
        self.persist_directory = str(persist_directory) if persist_directory else None
        self._memory = None if persist_directory else tempfile.TemporaryDirectory(prefix="imgsim-collection-")
        self.index = ChromaIndex(path=self.persist_directory or self._memory.name, collection=collection_name)
        self.embedder = embedder or (TransformersEmbedder(model=embedding_model) if embedding_model else get_embedder())
        self._check_model(reembed=reembed)

    def _check_model(self, *, reembed: bool) -> None:
        """A persisted collection holds one model's vectors: another model may only take it over by re-embedding."""
        built_with = (self.index.collection(self._model).metadata or {}).get("model")
        if not built_with or built_with == self._model:
            return
        if not reembed:
            raise InvalidQuery(
                f"collection {self.collection_name!r} holds vectors of {built_with}, not of {self._model}: "
                "pass reembed=True to embed its images again with this model, or use another collection_name"
            )
        ids, _, metadatas = self._all()
        kept = dict(zip(ids, metadatas))  # the caller's own metadata stays with each image
        self.index.drop(self._model)  # the new model's vectors may differ in length: a new collection
        paths = [Path(meta["path"]) for meta in metadatas if meta.get("path")]
        for start in range(0, len(paths), 32):
            described = [self._describe_file(path) for path in paths[start : start + 32] if path.is_file()]
            if described:
                vectors = self.embedder.encode_images([photo.pixels for _, photo, _ in described])
                metadata = [{**kept.get(pk, {}), **facts} for pk, _, facts in described]
                self.index.upsert(self._model, [pk for pk, _, _ in described], vectors, metadata)

    @property
    def _model(self) -> str:
        return self.embedder.model_name

    # --- adding -----------------------------------------------------------------

    def _describe_file(self, path: Path):
        from gallery.decoding import decode
        from gallery.file_names import path_text

        data = _read(path)
        photo = decode(data)
        exif = photo.exif
        metadata = {
            "filename": path_text(path.name),
            "path": path_text(path.resolve()),
            "width": photo.width,
            "height": photo.height,
            "format": photo.format,
            "byte_size": len(data),
            "camera_make": exif.camera_make,
            "camera_model": exif.camera_model,
            "date_taken": exif.taken_at.isoformat() if exif.taken_at else None,
        }
        return hashlib.sha256(data).hexdigest(), photo, metadata

    def add_image(self, image_path, embedding=None, metadata: dict | None = None) -> str:
        """Add one image file; return its id (the SHA-256 of its bytes)."""
        from gallery.decoding import DecodeError, NotAnImage

        path = Path(image_path)
        try:
            image_id, photo, stored = self._describe_file(path)
        except (NotAnImage, DecodeError) as error:
            raise InvalidQuery(f"{path} is not an image imgsim reads: {error}") from None
        if embedding is None:
            vector = self.embedder.encode_images([photo.pixels])[0]
        else:
            vector = np.asarray(embedding, dtype=np.float32).ravel()
            if vector.shape[0] != self.embedder.dimension:
                raise InvalidQuery(
                    f"the embedding has {vector.shape[0]} values; {self._model} gives {self.embedder.dimension}: "
                    "every vector of a collection must come from the same model"
                )
            vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
        stored.update(metadata or {})
        self.index.upsert(self._model, [image_id], vector[None], [stored])
        return image_id

    def add_images_from_directory(
        self,
        directory_path,
        max_images: int | None = None,
        recursive: bool = True,
        extensions: list[str] | None = None,
        batch_size: int = 32,
    ) -> int:
        """Add the images in a folder, in batches; return how many were added.

        Unreadable files, and images already in the collection (the same bytes), are
        skipped: with max_images, calling it again goes on with the next ones.
        """
        from gallery.decoding import DecodeError, NotAnImage

        folder = Path(directory_path)
        if not folder.is_dir():
            raise InvalidQuery(f"{folder} is not a directory")
        wanted = {e.lower() if e.startswith(".") else "." + e.lower() for e in (extensions or DEFAULT_EXTENSIONS)}
        paths = sorted(
            p
            for p in (folder.rglob("*") if recursive else folder.glob("*"))
            if p.is_file() and p.suffix.lower() in wanted
        )
        if max_images is not None and max_images < 0:
            raise InvalidQuery("max_images must be 0 or more")
        known = self.index.ids(self._model)
        limit = len(paths) if max_images is None else max_images
        added, batch = 0, ([], [], [])
        for path in paths:
            if added + len(batch[0]) >= limit:
                break
            try:
                image_id, photo, metadata = self._describe_file(path)
            except (NotAnImage, DecodeError, InvalidQuery):
                continue
            if image_id in known or image_id in batch[0]:
                continue
            for column, value in zip(batch, (image_id, photo.pixels, metadata)):
                column.append(value)
            if len(batch[0]) == batch_size:
                added += self._add_batch(*batch)
                batch = ([], [], [])
        if batch[0]:
            added += self._add_batch(*batch)
        return added

    def _add_batch(self, ids, pixels, metadatas) -> int:
        self.index.upsert(self._model, ids, self.embedder.encode_images(pixels), metadatas)
        return len(ids)

    # --- searching ----------------------------------------------------------------

    def _query_vector(self, query_text, query_image_path, query_embedding, exclude_text) -> np.ndarray:
        given = sum(x is not None for x in (query_text, query_image_path, query_embedding))
        if given != 1:
            raise InvalidQuery("give exactly one of query_text, query_image_path, query_embedding")
        if query_text is not None:
            vector = self.embedder.encode_texts([query_text])[0]
        elif query_image_path is not None:
            from gallery.decoding import DecodeError, NotAnImage, decode

            try:
                vector = self.embedder.encode_images([decode(_read(Path(query_image_path))).pixels])[0]
            except (NotAnImage, DecodeError) as error:
                raise InvalidQuery(f"{query_image_path} is not an image imgsim reads: {error}") from None
        else:
            try:
                vector = np.asarray(query_embedding, dtype=np.float32).ravel()
            except (TypeError, ValueError):
                raise InvalidQuery("query_embedding must be a list of numbers") from None
            if vector.shape[0] != self.embedder.dimension:
                raise InvalidQuery(
                    f"query_embedding has {vector.shape[0]} values; {self._model} gives {self.embedder.dimension}"
                )
        if exclude_text:
            vector = vector - 0.5 * self.embedder.encode_texts([exclude_text])[0]
        norm = float(np.linalg.norm(vector))
        if not np.isfinite(norm) or norm == 0:
            raise InvalidQuery("the query embedding is empty or not finite")
        return vector / norm

    def find_similar(
        self,
        query_text: str | None = None,
        query_image_path=None,
        query_embedding=None,
        top_k: int = 10,
        threshold: float | None = None,
        filter_metadata: dict | None = None,
        exclude_text: str | None = None,
    ) -> list[dict]:
        """Return the most similar images, best first: id, filename, path, similarity, metadata."""
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= 1000:
            raise InvalidQuery(f"top_k must be a whole number from 1 to 1000, not {top_k!r}")
        if threshold is not None and not (isinstance(threshold, (int, float)) and -1.0 <= threshold <= 1.0):
            raise InvalidQuery(f"threshold must be a similarity from -1 to 1, not {threshold!r}")
        where = to_chroma(validate(filter_metadata, free_form=True)) if filter_metadata else None
        vector = self._query_vector(query_text, query_image_path, query_embedding, exclude_text)
        hits = self.index.query(self._model, vector, top_k, where=where, with_metadata=True)
        floor = -1.0 if threshold is None else threshold
        return [
            {
                "id": pk,
                "filename": meta.get("filename", ""),
                "path": meta.get("path", ""),
                "similarity": sim,
                "metadata": meta,
            }
            for pk, sim, meta in hits
            if sim >= floor
        ]

    def _all(self) -> tuple[list[str], np.ndarray, list[dict]]:
        found = self.index.get(self._model, with_vectors=True)
        ids = sorted(found)
        if not ids:
            return [], np.zeros((0, 0), dtype=np.float32), []
        return ids, np.stack([found[i][1] for i in ids]), [found[i][0] for i in ids]

    def find_duplicates(self, similarity_threshold: float = 0.95) -> list[dict]:
        """Return pairs of images at least this similar, most similar first."""
        if not (isinstance(similarity_threshold, (int, float)) and -1.0 <= similarity_threshold <= 1.0):
            raise InvalidQuery(f"similarity_threshold must be from -1 to 1, not {similarity_threshold!r}")
        from search.similarity import similar_pairs

        ids, vectors, metadatas = self._all()
        if not ids:
            return []
        rows, cols, similarity = similar_pairs(vectors, np.arange(len(ids)), similarity_threshold, None)
        pairs = [
            {
                "image1_id": ids[i],
                "image2_id": ids[j],
                "image1_filename": metadatas[i].get("filename", ""),
                "image2_filename": metadatas[j].get("filename", ""),
                "image1_path": metadatas[i].get("path", ""),
                "image2_path": metadatas[j].get("path", ""),
                "similarity": float(sim),
            }
            for i, j, sim in zip(rows, cols, similarity)
        ]
        return sorted(pairs, key=lambda pair: -pair["similarity"])

    def get_stats(self) -> dict:
        """Return counts and averages for the collection (the brief's get_stats)."""
        found = self.index.get(self._model)
        metadatas = [meta for meta, _ in found.values()]
        widths = [m["width"] for m in metadatas if "width" in m]
        heights = [m["height"] for m in metadatas if "height" in m]
        formats: dict[str, int] = {}
        for meta in metadatas:
            formats[meta.get("format", "?")] = formats.get(meta.get("format", "?"), 0) + 1
        return {
            "total_images": len(metadatas),
            "avg_width": round(sum(widths) / len(widths), 1) if widths else None,
            "avg_height": round(sum(heights) / len(heights), 1) if heights else None,
            "formats": formats,
            "embedding_model": self._model,
            "embedding_dimension": self.embedder.dimension,
            "collection_name": self.collection_name,
            "persist_directory": self.persist_directory,
        }

    # --- export / import ----------------------------------------------------------

    def export_collection(self, output_path) -> int:
        """Write every id, metadata and vector to JSON (gzip when the name ends in .gz); return the count."""
        ids, vectors, metadatas = self._all()
        document = {
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "collection": self.collection_name,
            "model": self._model,
            "dimension": int(vectors.shape[1]) if len(ids) else self.embedder.dimension,
            "items": [
                {"id": pk, "metadata": meta, "embedding": base64.b64encode(vec.astype("<f4").tobytes()).decode()}
                for pk, vec, meta in zip(ids, vectors, metadatas)
            ],
        }
        opener = gzip.open if str(output_path).endswith(".gz") else open
        with opener(output_path, "wt", encoding="utf-8") as handle:
            json.dump(document, handle)
        return len(ids)

    def import_collection(self, input_path) -> int:
        """Load a file written by export_collection into this collection; return the count."""
        opener = gzip.open if str(input_path).endswith(".gz") else open
        try:
            with opener(input_path, "rt", encoding="utf-8") as handle:
                document = json.load(handle)
        except FileNotFoundError:
            raise InvalidQuery(f"{input_path}: no such file") from None
        except (ValueError, OSError, EOFError) as error:  # not JSON, not UTF-8, not gzip
            raise InvalidQuery(f"{input_path} is not an export_collection file: {error}") from None
        if not isinstance(document, dict) or (document.get("format"), document.get("version")) != (
            EXPORT_FORMAT,
            EXPORT_VERSION,
        ):
            raise InvalidQuery(f"{input_path} is not a version {EXPORT_VERSION} {EXPORT_FORMAT} export")
        items = document.get("items", [])
        vectors = [np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4") for item in items]
        if any(v.shape[0] != document["dimension"] for v in vectors):
            raise InvalidQuery("an embedding does not have the declared dimension")
        if document["model"] != self._model:
            raise InvalidQuery(f"the export was made with {document['model']}; this backend uses {self._model}")
        if items:
            self.index.upsert(
                self._model, [item["id"] for item in items], np.stack(vectors), [item["metadata"] for item in items]
            )
        return len(items)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InvalidQuery(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InvalidQuery(f"{path} is a folder, not an image file") from None
    except OSError as error:
        raise InvalidQuery(f"cannot read {path}: {error.strerror or error}") from None


def _ensure_settings() -> None:
    """In a bare notebook (no Django project), configure the few settings the shared code reads."""
    from django.conf import settings

    if settings.configured:
        return
    model = os.environ.get("IMGSIM_MODEL") or "openai/clip-vit-base-patch32"
    settings.configure(
        IMGSIM_MAX_PIXELS=180_000_000,
        IMGSIM_QUERY_MAX_PIXELS=32_000_000,
        IMGSIM_DUPLICATE_BLOCK=1024,
        IMGSIM_DUPLICATE_MEMORY_MB=512,
        IMGSIM_MODEL=model,
        IMGSIM_EMBEDDER={"BACKEND": "search.embeddings.TransformersEmbedder", "OPTIONS": {"model": model}},
        USE_TZ=True,
    )
