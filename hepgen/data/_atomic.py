"""Publishing a finished file under its final name, atomically: what the data writers
(:mod:`hepgen.data._h5`) and the checkpoint writer (:mod:`hepgen.models.checkpoint`) share.

A file is written in full under a scratch name of its own writer, ``FILE.partial-<pid>-<random>``,
then renamed onto FILE in one step. So FILE only ever holds the previous file, untouched,
or a complete new one (a reader never sees a half-written file), and two processes writing
the same target each write their own scratch file instead of interleaving their bytes in one.
Without ``force`` the final step refuses to replace a FILE that another process created
meanwhile (a hard link, which fails if FILE exists), where a rename would overwrite it.

What a stopped writer leaves: an exception (Ctrl-C included) lets the writer remove its
scratch file, or keep it as ``FILE.partial`` (the data writers keep the finished chunks of
an interrupted run there, marked ``complete=False``); SIGKILL or a power loss stops it before
it can do either, and its ``FILE.partial-<pid>-<random>`` stays behind, incomplete: delete it.
"""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path

# Errors of os.link meaning "this file system has no hard links", not "FILE exists".
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}


def kept_path(path: Path) -> Path:
    """Where an interrupted run's finished part is kept: ``FILE.partial``."""
    return path.with_name(path.name + ".partial")


def scratch_path(path: Path) -> Path:
    """A scratch name for one writer of ``path``: ``FILE.partial-<pid>-<8 hex digits>``,
    unique per process and per writer within it."""
    return path.with_name(f"{path.name}.partial-{os.getpid()}-{secrets.token_hex(4)}")


def publish(scratch: Path, path: Path, force: bool) -> Path:
    """Give the complete file ``scratch`` its final name ``path`` in one step and return it.

    ``force``: replace an existing ``path`` (atomically: readers see the old or the new
    file). Without it, FileExistsError if ``path`` exists now (another process made it
    after this writer started); ``scratch`` is then kept as ``FILE.partial``."""
    if force:
        os.replace(scratch, path)
        return path
    try:
        os.link(scratch, path)
    except FileExistsError:
        _refuse_existing(scratch, path)
    except OSError as err:
        if err.errno not in _NO_HARD_LINKS:
            raise
        # No hard links here: check, then rename (a file made between the two is replaced).
        if path.exists():
            _refuse_existing(scratch, path)
        os.replace(scratch, path)
        return path
    scratch.unlink()
    return path


def _refuse_existing(scratch: Path, path: Path):
    kept = kept_path(path)
    os.replace(scratch, kept)
    raise FileExistsError(
        f"{path} was created by another process while this one wrote it; this run's file is kept as {kept}"
    )
