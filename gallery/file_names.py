"""File names as imgsim stores and shows them (no Django here: the standalone toolkit uses it too)."""

import os
import unicodedata


def path_text(path) -> str:
    """A path as text that a database and a terminal accept: bytes that are not UTF-8 written as \\xe9.

    Python gives such bytes as lone surrogates, which SQLite, PostgreSQL and a UTF-8
    stdout all refuse.
    """
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def display_name(name: str) -> str:
    """Return a file name fit to show: no folders, control or bidi characters, at most 255 characters.

    Names come from uploads too, where the client chooses them: "../../x.jpg", a NUL,
    or a right-to-left override that makes "gpj.exe" read as "exe.jpg". The name is
    only ever shown; storage paths come from the SHA-256.
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Zl", "Zp")).strip()
    if len(cleaned) > 255:  # keep the extension, which says what the file is
        stem, dot, extension = cleaned.rpartition(".")
        cleaned = (stem[: 254 - len(extension)] + dot + extension) if dot and len(extension) <= 10 else cleaned[:255]
    return cleaned or "unnamed"
