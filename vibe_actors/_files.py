"""Owner-only files and directories under the data directory.

Everything the runtime keeps under ``data_dir`` (SQLite databases and their
``-wal``/``-shm``/``-journal`` companions, the policy and webhooks JSON
files) may hold secrets or authorization state, so it is created private:
directories 0700, files 0600. The modes are set with ``chmod`` after
creation, so they do not depend on the process umask (a umask can only take
bits away from the mode given to ``mkdir``/``open``, and a strict one such as
0o277 would otherwise leave a file the runtime cannot write). A file or
directory that already exists with group or other permission bits (one made
by an older version, or by hand) loses them; the owner's own bits are left
as they are.

Failures are not hidden: each helper raises the ``OSError`` of the step that
failed (for instance ``PermissionError`` when the process does not own an
existing directory it has to tighten), and the caller turns it into its own
error (:class:`~vibe_actors.store._database.StoreError`, a "not saved" reply).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

__all__ = [
    "DIRECTORY_MODE",
    "FILE_MODE",
    "private_dir",
    "private_file",
    "tighten",
    "write_private_atomically",
]

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600
_GROUP_AND_OTHER = stat.S_IRWXG | stat.S_IRWXO


def tighten(path: Path) -> bool:
    """Remove the group and other permission bits of ``path`` if it exists.

    Returns whether ``path`` exists: like :meth:`Path.exists`, a path whose
    parent is a file does not, and a missing path is left alone. Follows a
    symbolic link, as the code opening the path does. Raises ``OSError`` if
    the path cannot be inspected or its mode cannot be changed.
    """
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False
    if mode & _GROUP_AND_OTHER:
        os.chmod(path, mode & ~_GROUP_AND_OTHER)
    return True


def private_dir(path: Path) -> Path:
    """Make sure directory ``path`` exists and only its owner may use it; returns ``path``.

    Missing directories on the way (``path`` and the ancestors that do not
    exist yet) are created with mode 0700; existing ancestors are not
    touched (they may be shared, like ``/var/lib``); ``path`` itself, if it
    already existed, is tightened (:func:`tighten`). Safe against another
    thread or process creating the same directory at the same time. Raises
    ``OSError``: ``FileExistsError`` or ``NotADirectoryError`` if ``path`` or
    an ancestor is not a directory, ``PermissionError`` if a directory cannot
    be created or tightened, or if ``path`` is a shared sticky directory
    such as ``/tmp`` (it is refused rather than locked to one user).
    """
    missing: list[Path] = []
    walked = path
    while not walked.exists() and walked != walked.parent:
        missing.append(walked)
        walked = walked.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIRECTORY_MODE)
        except FileExistsError:
            if not directory.is_dir():
                raise
            tighten(directory)  # made by someone else meanwhile, with their umask
        else:
            os.chmod(directory, DIRECTORY_MODE)  # the umask may have taken bits away
    if not missing:
        mode = os.stat(path).st_mode
        if not stat.S_ISDIR(mode):
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(path))
        if mode & stat.S_ISVTX:
            # A sticky directory is shared (/tmp): tightening it would lock out its other users.
            raise PermissionError(
                errno.EPERM, "a shared directory (sticky bit), not a private one", str(path)
            )
        tighten(path)
    return path


def private_file(path: Path) -> Path:
    """Make sure file ``path`` exists with mode 0600 (created empty if missing); returns ``path``.

    Its directory must exist (see :func:`private_dir`). An existing file
    keeps its content and is tightened (:func:`tighten`). Raises ``OSError``
    if the file cannot be created or its mode cannot be changed.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        tighten(path)
        return path
    try:
        os.fchmod(fd, FILE_MODE)  # the umask may have taken bits away
    finally:
        os.close(fd)
    return path


def write_private_atomically(path: Path, data: bytes) -> None:
    """Replace file ``path`` with ``data`` so that a reader sees the old file or the new one.

    The directory is made private (:func:`private_dir`); the data goes to a
    temporary file in it, created anew with mode 0600 (a leftover of a crashed
    write with the same name is removed first), synced, then renamed over
    ``path``; the rename is synced too. The file therefore never exists with
    wider permissions, even for a moment. Used from one thread per ``path``
    (the temporary name is per process). Raises ``OSError`` if any step
    fails; ``path`` is then unchanged and the temporary file is removed.
    """
    directory = private_dir(path.parent)
    tmp = directory / f".{path.name}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), FILE_MODE)  # the umask may have taken bits away
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_directory(directory)


def _sync_directory(directory: Path) -> None:
    """fsync ``directory`` so a rename in it is durable; raises ``OSError`` on failure."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
