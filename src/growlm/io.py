"""Atomic file writes, what --force may replace, content hashes, and the test-only fault hook.

Files and folders are written with the user's umask (a temp file or folder is made private, then given the mode
an ordinary `open`/`mkdir` would have). `--force` replaces only what `growlm_kind` recognises as growlm's own
output; everything else is refused with one line.

GROWLM_FAULT=POINT:N[:MODE] (tests only) makes the N-th call of `fault(POINT)` in a process kill it with SIGKILL
(MODE kill, the default), raise KeyboardInterrupt (interrupt) or raise OSError ENOSPC (enospc). Points: step (an
optimizer step), checkpoint (a checkpoint written, not yet renamed into place), export (a stage model written, not
yet renamed), stage (between stages), "write NAME" (any atomic write of a file NAME, e.g. eval_by_depth.json of
`growlm eval-run`, written but not yet renamed). Under torchrun, GROWLM_FAULT_RANK=R arms it on rank R only.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from growlm.errors import GrowlmError
from growlm.legacy_folders import legacy_entries, legacy_kind


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write via a temp file in the same folder, then rename: readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes 0600; give the mode open() would
        fault(f"write {path.name}")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def dumps_json(obj: Any) -> str:
    """Canonical JSON (sorted keys, fixed indent) so equal content gives equal bytes."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, dumps_json(obj))


def umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(path: Path) -> None:
    """Give a folder built in a private temp folder (and everything in it) the modes the umask asks for."""
    mask = umask()
    for p in [path, *path.rglob("*")]:
        if not p.is_symlink():
            os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~mask)


def check_output(path: str | Path, force: bool) -> Path:
    """Refuse an existing output unless --force was given; an existing folder only if growlm made it."""
    path = Path(path)
    if path.is_dir():
        return check_replaceable(path, force)
    if path.exists() and not force:
        raise GrowlmError(f"output {path} already exists; choose another --out or pass --force to replace it")
    return path


def check_output_file(path: str | Path, force: bool, flag: str = "--out") -> Path:
    """A file output: refuse a folder at that path (nothing would be written into it); an existing file needs
    --force and must be one growlm wrote (growlm_file)."""
    path = Path(path)
    if path.is_dir():
        raise GrowlmError(f"{flag} {path} is a folder; give a file path (e.g. {path / 'results.json'})")
    if path.exists() and force and not growlm_file(path):
        raise GrowlmError(
            f"--force refused: {path} is not a file growlm wrote; growlm replaces only its own "
            f"outputs: remove it yourself or choose another {flag}"
        )
    return check_output(path, force)


# Marks growlm puts in the files it writes, so that --force can tell them from the user's.
PNG_METADATA = {"Software": "growlm"}
HTML_MARK = '<meta name="generator" content="growlm">'
MARKDOWN_MARK = "<!-- generator: growlm -->"


def growlm_file(path: Path) -> bool:
    """Whether an existing file is one growlm wrote: one of growlm's own names inside a folder growlm made, a JSON
    whose "format" is growlm's, or a PNG, HTML or Markdown file carrying growlm's mark."""
    if path.name in folder_entries(path.parent):
        return True
    if path.suffix == ".json":
        return _growlm_format(path) is not None
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    marks = {".png": b"tEXtSoftware\x00growlm", ".html": HTML_MARK.encode(), ".md": MARKDOWN_MARK.encode()}
    return path.suffix in marks and marks[path.suffix] in head


LOCK_FILE = ".growlm.lock"
MARK_FILE = ".growlm-folder.json"  # {"format": MARK_FORMAT, "kind": "model folder", "entries": [names]}
MARK_FORMAT = "growlm-folder-v1"
_TEMP_NAME = re.compile(r"\..+\.[A-Za-z0-9_]+\.tmp")  # .NAME.RANDOM.tmp of mkstemp/mkdtemp


def is_temporary(name: str) -> bool:
    """A temp file or folder of atomic_write_*/atomic_dir (.NAME.RANDOM.tmp, .NAME.old) or the lock, left
    behind by a killed process."""
    return (
        name == LOCK_FILE
        or bool(_TEMP_NAME.fullmatch(name))
        or (name.startswith(".") and name.endswith(".old") and name.count(".") >= 2)
    )


def _leftover(path: Path) -> bool:
    """is_temporary, and an .old one is a folder as atomic_dir leaves it: a user's own dot-file (.notes.old) is
    never taken for growlm's leftover, so a folder holding one is not empty."""
    return is_temporary(path.name) and (not path.name.endswith(".old") or path.is_dir())


# ---- folder marks: each owner marks the folders it makes; --force reads only the mark ------------------------
def mark_folder(path: str | Path, kind: str, entries: Iterable[str] | None = None) -> None:
    """Record that growlm made `path` as a `kind` and which names it may hold (default: what it holds now)."""
    path = Path(path)
    names = set(entries) if entries is not None else {p.name for p in path.iterdir() if not _leftover(p)}
    atomic_write_json(path / MARK_FILE, {"format": MARK_FORMAT, "kind": kind, "entries": sorted(names - {MARK_FILE})})


def claim_folder(path: str | Path, kind: str, entries: Iterable[str]) -> None:
    """Mark a folder its owner is (re)opening (a run, a study): the names the owner writes, plus what the folder
    holds and what an earlier mark listed (files other writers added, or a folder from before marks)."""
    path, old = Path(path), folder_mark(path)
    held = {p.name for p in path.iterdir() if not _leftover(p)}
    mark_folder(path, kind, {*entries, *held, *(old["entries"] if old else ())})


def add_entries(path: str | Path, names: Iterable[str]) -> None:
    """A writer putting its own files into a folder growlm marked (eval results into a run, a report into a run
    or study) records their names there; an unmarked folder is left as it is."""
    mark = folder_mark(path)
    if mark is not None and not set(names) <= set(mark["entries"]):
        mark_folder(path, mark["kind"], {*mark["entries"], *names})


def folder_mark(path: str | Path) -> dict | None:
    data = _read_json(Path(path) / MARK_FILE)
    valid = (
        isinstance(data, dict)
        and data.get("format") == MARK_FORMAT
        and isinstance(data.get("kind"), str)
        and isinstance(data.get("entries"), list)
    )
    return data if valid else None


def growlm_kind(path: str | Path) -> str | None:
    """What growlm made at `path` ('run directory', 'model folder', ...), or None when it cannot tell: a folder
    is growlm's when its mark says so and it holds nothing but the names the mark lists (a user's file added to
    it makes it theirs). Folders of growlm versions that did not mark them are recognised by their names."""
    path = Path(path)
    if not path.is_dir():
        return None
    names = {p.name for p in path.iterdir() if not _leftover(p)} - {MARK_FILE}
    mark = folder_mark(path)
    if mark is not None:
        return mark["kind"] if names <= set(mark["entries"]) else None
    return legacy_kind(path, names, growlm_kind, _leftover, _read_json)


def folder_entries(path: Path) -> set[str]:
    """The names growlm may put in the folder it made at `path` (empty when it did not make it)."""
    kind = growlm_kind(path)
    if kind is None:
        return set()
    mark = folder_mark(path)
    return set(mark["entries"]) if mark is not None else legacy_entries(kind)


def _read_json(file: Path) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _growlm_format(file: Path) -> str | None:
    data = _read_json(file)
    fmt = data.get("format") if isinstance(data, dict) else None
    return fmt.removeprefix("growlm-").rsplit("-v", 1)[0] + " folder" if str(fmt).startswith("growlm-") else None


def check_replaceable(path: str | Path, force: bool, flag: str = "--out") -> Path:
    """An output folder: absent or empty is fine; an existing one needs --force and must be growlm's own."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise GrowlmError(f"{flag} {path} is a file; give a folder path (or remove the file)")
    if not path.is_dir() or all(map(_leftover, path.iterdir())):
        return path
    kind = growlm_kind(path)
    shown = sorted(p.name for p in path.iterdir())
    holds = f"it holds {', '.join(shown[:3])}{', ...' if len(shown) > 3 else ''}"
    if kind is None and not force:
        raise GrowlmError(
            f"output {path} already exists and is not something growlm made ({holds}); choose "
            f"another {flag} (--force replaces only growlm's own outputs)"
        )
    if not force:
        raise GrowlmError(
            f"output {path} already exists (a {kind}); choose another {flag} or pass --force to replace it"
        )
    here = Path.cwd().resolve()
    if path.resolve() in (here, *here.parents, Path.home().resolve()):
        raise GrowlmError(
            f"--force refused: {path} is the current folder, one above it or the home folder; choose another {flag}"
        )
    if kind is None:
        raise GrowlmError(
            f"--force refused: {path} is not something growlm made ({holds}); growlm replaces only "
            f"its own outputs: remove it yourself or choose another {flag}"
        )
    return path


def check_not_input(out: str | Path, inputs: Iterable[str | Path | None], flag: str = "--out") -> None:
    """Refuse an output that is one of the command's inputs or a folder holding one: --force would replace (and
    an ordinary write would clobber) what the command reads."""
    target = Path(out).resolve()
    for given in inputs:
        if given and (target == Path(given).resolve() or target in Path(given).resolve().parents):
            raise GrowlmError(
                f"{flag} {out} would overwrite the input {given} (the same path or a folder holding "
                f"it); choose another {flag}"
            )


def clear_folder(path: Path, keep: tuple[str, ...] = (LOCK_FILE,)) -> None:
    """Empty a folder check_replaceable accepted, keeping `keep` (the lock a process holds)."""
    for p in path.iterdir():
        if p.name not in keep:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


@contextlib.contextmanager
def atomic_dir(out: str | Path, force: bool = False, kind: str | None = None) -> Iterator[Path]:
    """Build a directory in a temp sibling and move it into place only when the body succeeds; `kind` marks it
    as growlm's (mark_folder, listing what the body wrote).

    On any error nothing partial is left behind and an existing output is untouched.
    """
    out = check_replaceable(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=_temp_prefix(out), suffix=".tmp"))
    try:
        yield tmp
        if kind is not None:
            mark_folder(tmp, kind)
        apply_umask(tmp)  # mkdtemp makes 0700, and some writers (safetensors) 0600 files
        old = out.with_name(f".{out.name}.old")
        if out.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(tmp, out)
        else:
            os.replace(tmp, out)
        if old.is_dir() and not old.is_symlink():  # also the one a process killed mid-swap left
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _temp_prefix(path: Path) -> str:
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


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_dir(path: str | Path, names: list[str] | None = None) -> str:
    """Hash of a folder's files (relative names and contents), in sorted order."""
    path = Path(path)
    files = (
        [path / n for n in sorted(names)]
        if names is not None
        else sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and p.name != MARK_FILE  # the mark describes the folder, not its content
        )
    )
    h = hashlib.sha256()
    for p in files:
        h.update(p.relative_to(path).as_posix().encode() + b"\0")
        h.update(sha256_file(p).encode() + b"\n")
    return h.hexdigest()


_FAULT_COUNTS: dict[str, int] = {}


def fault(point: str) -> None:
    """The test-only fault hook (see the module docstring); a no-op unless GROWLM_FAULT names `point`."""
    spec = os.environ.get("GROWLM_FAULT")
    if not spec:
        return
    name, _, rest = spec.partition(":")
    count, _, mode = rest.partition(":")
    if name != point or os.environ.get("GROWLM_FAULT_RANK", os.environ.get("RANK", "0")) != os.environ.get("RANK", "0"):
        return
    _FAULT_COUNTS[point] = _FAULT_COUNTS.get(point, 0) + 1
    if _FAULT_COUNTS[point] != int(count or 1):
        return
    if mode == "interrupt":
        raise KeyboardInterrupt
    if mode == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), point)
    os.kill(os.getpid(), signal.SIGKILL)
