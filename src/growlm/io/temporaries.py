"""What a writer leaves behind when it is killed, and removing it.

An atomic write goes through a temp sibling .NAME.<pid>h<host tag>_RANDOM.tmp (mkstemp/mkdtemp); an atomic folder
swap parks the old folder as .NAME.old; a process writing a folder holds LOCK_FILE in it. The pid and host tag in a
temp name let the next writer remove what a dead writer on this machine left, and never a live or remote one's.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import socket
from pathlib import Path

LOCK_FILE = ".growlm.lock"
_TEMP_NAME = re.compile(r"\..+\.[A-Za-z0-9_]+\.tmp")  # .NAME.RANDOM.tmp of mkstemp/mkdtemp


def is_temporary(name: str) -> bool:
    """A temp file or folder of an atomic write (.NAME.RANDOM.tmp, .NAME.old) or the lock, left behind by a killed
    process."""
    return (
        name == LOCK_FILE
        or bool(_TEMP_NAME.fullmatch(name))
        or (name.startswith(".") and name.endswith(".old") and name.count(".") >= 2)
    )


def is_leftover(path: Path) -> bool:
    """is_temporary, and an .old one is a folder as an atomic folder swap leaves it: a user's own dot-file
    (.notes.old) is never taken for growlm's leftover, so a folder holding one is not empty."""
    return is_temporary(path.name) and (not path.name.endswith(".old") or path.is_dir())


def temp_prefix(path: Path) -> str:
    """Temp names are .NAME.<pid>h<host tag>_RANDOM.tmp: they tell a killed writer's leftover from a live one's."""
    return f".{path.name}.{os.getpid()}h{_host_tag()}_"


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def remove_stale_temporaries(path: Path) -> None:
    """Remove the temp files/folders for `path` that a writer killed on this machine left (its pid is gone);
    another machine's (a shared file system) and unknown ones are left alone."""
    start = f".{path.name}."
    for p in path.parent.glob(f"{glob.escape(start)}*h*_*.tmp") if path.parent.is_dir() else ():
        pid, _, host = p.name[len(start) :].partition("_")[0].partition("h")
        if pid.isdigit() and host == _host_tag() and not _alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
