"""The one family of file writers: every file faceinpaint writes goes through ``atomic_write``.

A file is written to a temporary name in its destination folder, flushed and ``fsync``-ed, given
the mode the umask gives (as ``open()`` would), and renamed over the target. The rename is atomic
on one filesystem, so a crash or a kill at any moment leaves either the old file or the new one,
never half a file; the temporary file stays in the destination folder so that no copy across
filesystems (a ``$TMPDIR`` on another disk) is ever made. Its name holds the writer's host and
PID, so that :func:`remove_dead_temporaries` can clear what a killed writer left behind without
touching a live one's.

A full disk (``ENOSPC``) or quota (``EDQUOT``) while writing is a :class:`DiskFullError` naming
the file, the bytes it needs and the bytes free, with nothing of the file left behind.

Images are read through ``eight_bit``, so that 16-bit and float images keep their contrast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

TEMPORARY_SUFFIX = ".tmp"


class DiskFullError(OSError):
    """No room on the disk (or in the quota) for a file: ``path``, the bytes it ``needs`` (or,
    with ``at_least``, had written when the disk filled) and the bytes ``free``."""

    def __init__(self, path: str | Path, needs: int, free: int, at_least: bool = False) -> None:
        amount = f"more than {needs:,} bytes" if at_least else f"{needs:,} bytes"
        need = f"it needs {amount} and " if needs or not at_least else ""
        super().__init__(
            f"no space left for {path}: {need}{free:,} bytes are free there "
            "(disk full or quota reached); free some space or write elsewhere"
        )
        self.errno = errno.ENOSPC
        self.path, self.needs, self.free = Path(path), needs, free


NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def free_bytes(path: str | Path) -> int:
    """Bytes free to this user on the filesystem of ``path`` (or of its nearest existing parent)."""
    existing = Path(path).absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return shutil.disk_usage(existing).free


def require_space(path: str | Path, needs: int) -> None:
    """``DiskFullError`` unless ``needs`` bytes are free where ``path`` is to be written."""
    free = free_bytes(path)
    if needs > free:
        raise DiskFullError(path, needs, free)


def disk_full(
    err: BaseException, path: str | Path | None = None, written: int = 0
) -> DiskFullError | None:
    """``err`` as a ``DiskFullError`` when it, or an error it arose from (torch's writer raises
    a RuntimeError over the ``OSError``), is ``ENOSPC`` / ``EDQUOT``; None otherwise."""
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, DiskFullError):
            return cause
        if isinstance(cause, OSError) and cause.errno in NO_SPACE:
            where = path or cause.filename or "a file"
            return DiskFullError(where, written, free_bytes(where), at_least=True)
        cause = cause.__cause__ or cause.__context__
    return None


def umask_mode(directory: bool = False) -> int:
    """The mode ``open()`` (0o666) or ``mkdir()`` (0o777) gives a new file under the umask."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


def fsync_directory(directory: Path) -> None:
    """Make a rename inside ``directory`` durable (a no-op where folders cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` (``mode`` ``"w"`` or ``"wb"``); on success it
    replaces ``path``, on any exception it is removed and ``path`` is left as it was."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = f"{socket.gethostname()}.{os.getpid()}"
    fd, name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.{writer}.", suffix=TEMPORARY_SUFFIX
    )
    temporary = Path(name)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, umask_mode())
        os.replace(temporary, path)
    except BaseException as err:
        written = temporary.stat().st_size if temporary.exists() else 0
        temporary.unlink(missing_ok=True)
        full = disk_full(err, path, written)
        if full is None or full is err:
            raise
        raise full from err
    fsync_directory(path.parent)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_dead_temporaries(folder: str | Path) -> list[Path]:
    """Remove the temporary files that ``atomic_write`` calls of this host left in ``folder``
    when their process died before the rename (a kill mid-save); those of live processes and of
    other hosts stay. Returns the files removed (none where the folder is not writable)."""
    host = socket.gethostname()
    removed = []
    for temporary in Path(folder).glob(f".*{TEMPORARY_SUFFIX}"):
        # .<target>.<host>.<pid>.<random>.tmp (mkstemp's random part has no dot)
        writer = temporary.name.removesuffix(TEMPORARY_SUFFIX).rsplit(".", 2)
        if len(writer) != 3 or not writer[0].endswith(f".{host}") or not writer[1].isdigit():
            continue
        if not _process_alive(int(writer[1])):
            with contextlib.suppress(OSError):
                temporary.unlink()
                removed.append(temporary)
    return removed


def write_text(text: str, path: str | Path) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_write(path) as handle:
        handle.write(text)
    return Path(path)


def write_jsonl(rows: Iterable[Mapping[str, Any]], path: str | Path) -> Path:
    """Rewrite ``path`` atomically with one JSON object per line."""
    return write_text("".join(json.dumps(row) + "\n" for row in rows), path)


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a JSON lines file; ``[]`` when it does not exist."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{number} is not a JSON line: {err}") from err
    return rows


def append_jsonl(rows: Iterable[Mapping[str, Any]], path: str | Path) -> Path:
    """Add ``rows`` after the lines already in ``path``, atomically (all of them or none)."""
    return write_jsonl([*read_jsonl(path), *rows], path)


def save_image(array: np.ndarray, path: str | Path) -> Path:
    """(H,W,3) or (H,W) uint8 to an image file whose format follows the suffix (PNG, JPEG, ...)."""
    path = Path(path)
    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is None:
        raise ValueError(f"{path}: unknown image suffix {path.suffix!r}; use .png or .jpg")
    with atomic_write(path, "wb") as handle:
        Image.fromarray(array).save(handle, format=image_format)
    return path


def eight_bit(image: Image.Image) -> Image.Image:
    """``image`` with 8 bits per channel: 16-bit and 32-bit integer greyscale (modes ``I;16*``,
    ``I``: 16-bit PNGs and TIFFs) scaled from 0-65535 to 0-255, float greyscale (``F``) from
    0-1 when no value exceeds 1, else clipped to 0-255; other modes unchanged. PIL's own
    ``convert("RGB")`` clips those modes at 255, so a 16-bit photo would read as all white."""
    if image.mode not in ("I", "F") and not image.mode.startswith("I;16"):
        return image
    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        scale = 255.0 if values.size and values.max() <= 1.0 else 1.0
    else:
        scale = 255.0 / 65535.0
    return Image.fromarray(np.clip(np.rint(values * scale), 0, 255).astype(np.uint8))


def plain(value: Any, strict: bool = False) -> Any:
    """JSON-ready copy: dicts (keys as strings), lists and tuples (as lists), dataclasses (as dicts
    of their fields) and plain values kept; other objects as strings, or, with ``strict``, a
    ``ValueError``."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v, strict) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, strict) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if strict:
        raise ValueError(f"{value!r} cannot be stored as JSON")
    return str(value)
