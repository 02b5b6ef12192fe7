"""Whether a models folder can be used, said in one line: a symlink loop, a path under a file, a dangling link
or a folder that cannot be reached or created is an input error, never an OSError from deep inside a command."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from fluxops.errors import FluxopsError


def _problem(path: Path, exc: OSError) -> FluxopsError:
    if exc.errno == errno.ELOOP:
        return FluxopsError("models_dir.not_a_dir", f"{path} is a symlink loop (it never reaches a folder)")
    if exc.errno == errno.ENOTDIR:
        return FluxopsError("models_dir.not_a_dir", f"{path} is under a file, not a folder")
    return FluxopsError("models_dir.unreachable", f"{path} cannot be reached ({exc.strerror or exc})")


def check_models_dir(path: Path) -> Path:
    """`path` when it is a folder, or absent under folders (setup creates it); else FluxopsError."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.lexists(path):
            raise FluxopsError("models_dir.not_a_dir", f"{path} is a symlink to {os.readlink(path)}, which "
                               "does not exist") from None
        if path.parent != path:
            check_models_dir(path.parent)
        return path
    except OSError as exc:
        raise _problem(path, exc) from exc
    if not stat.S_ISDIR(st.st_mode):
        raise FluxopsError("models_dir.not_a_dir", f"{path} is not a directory")
    return path


def make_models_dir(path: Path) -> Path:
    """Create the models folder (and its parents) for setup; a folder that cannot be made is an input error."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise FluxopsError("models_dir.not_a_dir", f"{path} is not a directory") from None
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise FluxopsError("setup.disk_full", f"cannot create {path}: {exc.strerror}") from exc
        raise FluxopsError("models_dir.unreachable", f"cannot create the models folder {path} "
                           f"({exc.strerror or exc})") from exc
    return path
