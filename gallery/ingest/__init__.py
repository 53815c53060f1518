"""The ingest pipeline: one path for `manage.py ingest` and the upload page.

Per photo: read the bytes once, hash them (known photos stop here), decode once at
reduced size (EXIF, renditions, perceptual hash and the embedder's input all come
from that decode), then, per batch, one model call, the files written (temp file +
rename), and one transaction for the rows. Two decode threads run ahead of the
model, so both cores stay busy. A photo's files are written before its row commits;
its vector reaches Chroma after commit (search.signals). Whatever a crash
interrupts, a re-run finishes: known photos are skipped by hash, orphan files are
reused or removed by `reconcile`.
"""

from gallery.ingest.discover import IngestError, Outcome, Source, discover
from gallery.ingest.pipeline import IngestReport, Pipeline

__all__ = ["IngestError", "IngestReport", "Outcome", "Pipeline", "Source", "discover"]
