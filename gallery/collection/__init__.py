"""Export and import of the whole library: a versioned JSON document, optionally zipped with the files.

The document (format "imgsim-collection", version 2) is one JSON object:

    {"format": "imgsim-collection", "version": 2, "exported_at": ISO-8601,
     "model": current embedding model, "dimension": its vector length or null,
     "images": [RECORD, ...],
     "albums": [{"name", "description", "cover": sha256 of the cover photo or null}, ...],
     "count": number of records}

and each RECORD describes one photo, keyed by the SHA-256 of its original bytes:

    {"id": sha256 hex, "file": "originals/ab/cdef....jpg" (in storage) or an absolute
     path (in_place), "in_place": bool, "original_name", "source_path", "source_size",
     "source_mtime", "format" (JPEG PNG WEBP GIF TIFF BMP HEIF), "width", "height",
     "byte_size", "phash", "pixel_hash", "added_at", "trashed_at" (ISO-8601 or null),
     "metadata": {"title", "description", "category", "tags": [...], "camera_make",
                  "camera_model", "lens", "taken_at", "latitude", "longitude",
                  "location", "extra": {...}},
     "embedding": {"model": name, "vector": base64 of little-endian float32} or null,
     "albums": [album names]}

Version 1 had no albums (neither list); imgsim still reads it. Album names match
the library's albums ignoring case; an import creates the ones it lacks and gives
them the description and cover of the document when they have none.

Records are sorted by id and written one at a time, and "count" comes last, so
neither side holds the library in memory. A `--with-files` bundle is a zip holding
this document as `collection.json` beside `originals/...` and `renditions/...` at
their storage paths; in a bundle every photo is a stored one.

Import checks the whole input before it changes anything (every record against
the declared schema in schema.py, every file against its SHA-256) (one clear ImportRefused
otherwise), then adds photos in batches; photos already in the library (same
SHA-256) are left as they are, so an interrupted import simply runs again.
"""

from gallery.collection.export import ExportReport, document_chunks, export_collection, iter_records
from gallery.collection.importing import ImportReport, import_collection, validate
from gallery.collection.source import DOCUMENT_NAME, FORMAT, VERSION, ImportRefused, Source

__all__ = [
    "DOCUMENT_NAME",
    "FORMAT",
    "VERSION",
    "ExportReport",
    "ImportRefused",
    "ImportReport",
    "Source",
    "document_chunks",
    "export_collection",
    "import_collection",
    "iter_records",
    "validate",
]
