"""Receiving uploaded files: one function for the upload page and the JSON API."""

from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from gallery.hooks import not_searchable
from gallery.ingest import Pipeline, Source
from gallery.models import Image

IN_TRASH = "already in the library, in the trash: restore it from the trash to see it again"


@dataclass
class UploadResult:
    status: int = 200
    error: str = ""
    outcomes: list[dict] = field(default_factory=list)
    not_searchable: int = 0  # stored, but not in search yet (embeddings to compute, or the index unreachable)


def _source(upload_file) -> Source:
    # Django keeps small uploads in memory and spools large ones to a temporary file;
    # the pipeline reads those when their turn comes, not all into memory first.
    if hasattr(upload_file, "temporary_file_path"):
        return Source(
            name=upload_file.name, path=Path(upload_file.temporary_file_path()), size=upload_file.size, uploaded=True
        )
    return Source(name=upload_file.name, data=upload_file.read(), size=upload_file.size, uploaded=True)


def receive_uploads(files: list, *, user) -> UploadResult:
    """Ingest uploaded files within the configured limits; report each file."""
    if not files:
        return UploadResult(400, "Choose at least one photo to upload.")
    if len(files) > settings.IMGSIM_UPLOAD_MAX_FILES:
        return UploadResult(400, f"At most {settings.IMGSIM_UPLOAD_MAX_FILES} files per upload.")
    result, accepted = UploadResult(), []
    for upload_file in files:
        if upload_file.size > settings.IMGSIM_UPLOAD_MAX_BYTES:
            result.outcomes.append(
                {
                    "name": upload_file.name,
                    "status": "failed",
                    "reason": f"larger than {settings.IMGSIM_UPLOAD_MAX_BYTES // 2**20} MB",
                }
            )
            continue
        accepted.append(_source(upload_file))
    # With a worker, the model runs there: the request only decodes and stores.
    report = Pipeline(user=user, embed=not settings.IMGSIM_WORKER).run(accepted)
    # A photo already in the library answers with its id, so a script can go on using it; one in the
    # trash says so, or the person uploading it again would look for it in vain.
    known = {o.sha256 for o in report.outcomes if o.status == "known" and o.sha256}
    rows = Image.objects.filter(sha256__in=known).values_list("sha256", "pk", "trashed_at") if known else []
    known_ids = {sha256: pk for sha256, pk, _ in rows}
    in_trash = {sha256 for sha256, _, trashed_at in rows if trashed_at is not None}
    result.outcomes += [
        {
            "name": o.name,
            "status": o.status,
            "reason": IN_TRASH if o.sha256 in in_trash else o.reason,
            "image_id": o.image_id or known_ids.get(o.sha256),
            "in_trash": o.sha256 in in_trash,
        }
        for o in report.outcomes
    ]
    result.not_searchable = not_searchable([o.image_id for o in report.outcomes if o.status == "added"])
    if len(files) == 1 and result.outcomes[0]["status"] == "failed" and not accepted:
        result.status = 413
    elif len(files) == 1 and result.outcomes[0]["status"] == "not_image":
        result.status = 415
    return result
