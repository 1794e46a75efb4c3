"""Writing a file so that a reader, or a second process writing the same file, never sees half of it."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: str | Path, content: str | bytes) -> None:
    """Write `content` (text or bytes) to a temporary sibling of `path`, then rename it over
    `path` (one step on POSIX)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb" if isinstance(content, bytes) else "w") as stream:
            stream.write(content)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
