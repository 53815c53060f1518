"""Finding the files to ingest: a folder walked in a stable order, links that loop or leave it skipped."""

import os
from dataclasses import dataclass
from pathlib import Path

from gallery.file_names import path_text


@dataclass
class Source:
    """One file to ingest: on disk (path) or uploaded (data)."""

    name: str
    path: Path | None = None
    data: bytes | None = None
    size: int | None = None
    mtime: float | None = None
    uploaded: bool = False  # path is a temporary upload file, not where the photo came from

    @property
    def path_text(self) -> str:
        return path_text(self.path) if self.path is not None else ""

    @property
    def path_is_text(self) -> bool:
        """False for a name in another encoding than UTF-8 (a Latin-1 card, an old share): no text holds it."""
        return self.path is None or self.path_text == str(self.path)

    @property
    def shown_name(self) -> str:
        """The name to show for the photo: one that is not UTF-8 is read as Windows-1252, its likeliest origin."""
        return self.name if self.path_is_text else os.fsencode(self.path.name).decode("cp1252", "replace")


@dataclass
class Outcome:
    name: str
    status: str  # added | known | not_image | failed | would_add
    reason: str = ""
    image_id: int | None = None
    sha256: str = ""  # of a known photo: which one it is
    path: str = ""  # where a known photo's bytes were found again (in-place ingest keeps the best path)


class IngestError(Exception):
    """The whole run cannot start (missing folder, nothing to do)."""


def discover(
    root: Path, *, recursive: bool = True, extensions: set[str] | None = None
) -> tuple[list[Source], list[Outcome]]:
    """List the files under root to ingest, sorted; links that loop or leave root are skipped."""
    root = Path(root)
    if not root.exists():
        raise IngestError(f"{root} does not exist")
    if root.is_file():
        stat = root.stat()
        return [Source(name=path_text(root.name), path=root.resolve(), size=stat.st_size, mtime=stat.st_mtime)], []
    if not root.is_dir():
        raise IngestError(f"{root} is neither a folder nor a file")
    resolved_root = root.resolve()
    sources, skipped = [], []
    walker = os.walk(
        root,
        followlinks=False,
        onerror=lambda error: skipped.append(
            Outcome(path_text(error.filename), "failed", f"cannot list folder: {error.strerror}")
        ),
    )
    for folder, dirs, files in walker:
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(folder) / name
            if extensions and path.suffix.lower() not in extensions:
                continue
            try:
                real = path.resolve(strict=True)
            except (OSError, RuntimeError):
                skipped.append(Outcome(path_text(path), "not_image", "broken or looping link"))
                continue
            if path.is_symlink() and not real.is_relative_to(resolved_root):
                skipped.append(Outcome(path_text(path), "not_image", "link points outside the folder"))
                continue
            try:
                stat = real.stat()
            except OSError as error:
                skipped.append(Outcome(path_text(path), "failed", f"cannot read: {error.strerror}"))
                continue
            if not real.is_file():
                skipped.append(Outcome(path_text(path), "not_image", "not a regular file"))
                continue
            sources.append(Source(name=path_text(path), path=real, size=stat.st_size, mtime=stat.st_mtime))
    return sources, skipped
