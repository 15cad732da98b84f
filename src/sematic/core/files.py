"""Files and folders only their owner can use: what Sematic keeps under ``SEMATIC_HOME``.

Runs, payloads and logs are the user's data. Every file is created 0600 and every folder
0700, whatever the umask: the mode is given when the file or folder is created, never
fixed afterwards, so nothing is readable by others even for a moment. Files and folders
that already exist are left as they are.
"""

from __future__ import annotations

import os
from pathlib import Path

FILE_MODE = 0o600
FOLDER_MODE = 0o700

StrPath = str | os.PathLike[str]


def private_folder(path: StrPath) -> None:
    """Create the folder ``path`` and each missing folder above it, 0700 each."""
    missing: list[str] = []
    current = os.path.abspath(path)
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, FOLDER_MODE)
        except FileExistsError:
            if not os.path.isdir(folder):
                raise


def private_opener(path: str, flags: int) -> int:
    """An ``opener`` for ``open()`` that creates the file 0600 (if it creates it)."""
    return os.open(path, flags, FILE_MODE)


def write_private(path: StrPath, data: str | bytes) -> None:
    """Write ``data`` to ``path`` (replacing what it held), created 0600 in a 0700 folder."""
    private_folder(Path(path).parent)
    if isinstance(data, str):
        data = data.encode()
    with open(path, "wb", opener=private_opener) as file:
        file.write(data)
