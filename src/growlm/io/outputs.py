"""Where a command may write: an existing output is refused unless `force` is given, and `force` replaces only what
growlm made (io.ownership); an output may not be, or hold, one of the command's inputs. atomic_dir builds an output
folder beside its place and swaps it in.

Messages name the caller's argument by its parameter in backticks (`out`, `force`); the CLI writes each as the
flag of the verb that ran (growlm.errors).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from growlm.errors import GrowlmError
from growlm.io.atomic import apply_umask
from growlm.io.ownership import growlm_file, growlm_kind, mark_folder
from growlm.io.temporaries import LOCK_FILE, is_leftover, remove_stale_temporaries, temp_prefix


def check_output(path: str | Path, force: bool, param: str = "out") -> Path:
    """Refuse an existing output unless `force`; an existing folder only if growlm made it. `param` names the
    caller's parameter that gave `path`."""
    path = Path(path)
    if path.is_dir():
        return check_replaceable(path, force, param)
    if path.exists() and not force:
        raise GrowlmError(f"output {path} already exists; choose another `{param}` or pass `force` to replace it")
    return path


def check_output_file(path: str | Path, force: bool, param: str = "out") -> Path:
    """A file output: refuse a folder at that path (nothing would be written into it); an existing file needs
    `force` and must be one growlm wrote (growlm_file)."""
    path = Path(path)
    if path.is_dir():
        raise GrowlmError(f"`{param}` {path} is a folder; give a file path (e.g. {path / 'results.json'})")
    if path.exists() and force and not growlm_file(path):
        raise GrowlmError(
            f"`force` refused: {path} is not a file growlm wrote; growlm replaces only its own "
            f"outputs: remove it yourself or choose another `{param}`"
        )
    return check_output(path, force, param)


def check_replaceable(path: str | Path, force: bool, param: str = "out") -> Path:
    """An output folder: absent or empty is fine; an existing one needs `force` and must be growlm's own."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise GrowlmError(f"`{param}` {path} is a file; give a folder path (or remove the file)")
    if not path.is_dir() or all(map(is_leftover, path.iterdir())):
        return path
    kind = growlm_kind(path)
    shown = sorted(p.name for p in path.iterdir())
    holds = f"it holds {', '.join(shown[:3])}{', ...' if len(shown) > 3 else ''}"
    if kind is None and not force:
        raise GrowlmError(
            f"output {path} already exists and is not something growlm made ({holds}); choose "
            f"another `{param}` (`force` replaces only growlm's own outputs)"
        )
    if not force:
        raise GrowlmError(
            f"output {path} already exists (a {kind}); choose another `{param}` or pass `force` to replace it"
        )
    here = Path.cwd().resolve()
    if path.resolve() in (here, *here.parents, Path.home().resolve()):
        raise GrowlmError(
            f"`force` refused: {path} is the current folder, one above it or the home folder; choose another `{param}`"
        )
    if kind is None:
        raise GrowlmError(
            f"`force` refused: {path} is not something growlm made ({holds}); growlm replaces only "
            f"its own outputs: remove it yourself or choose another `{param}`"
        )
    return path


def check_not_input(out: str | Path, inputs: Iterable[str | Path | None], param: str = "out") -> None:
    """Refuse an output that is one of the command's inputs or a folder holding one: `force` would replace (and
    an ordinary write would clobber) what the command reads."""
    target = Path(out).resolve()
    for given in inputs:
        if given and (target == Path(given).resolve() or target in Path(given).resolve().parents):
            raise GrowlmError(
                f"`{param}` {out} would overwrite the input {given} (the same path or a folder holding "
                f"it); choose another `{param}`"
            )


def clear_folder(path: Path, keep: tuple[str, ...] = (LOCK_FILE,)) -> None:
    """Empty a folder check_replaceable accepted, keeping `keep` (the lock a process holds)."""
    for p in path.iterdir():
        if p.name not in keep:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


def open_temp_dir(out: str | Path, force: bool = False) -> Path:
    """The temp sibling `commit_temp_dir` moves into place as `out` (what atomic_dir builds in); for a folder
    written by several processes between the two calls (a sharded checkpoint)."""
    out = check_replaceable(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    return Path(tempfile.mkdtemp(dir=out.parent, prefix=temp_prefix(out), suffix=".tmp"))


def commit_temp_dir(tmp: Path, out: str | Path, kind: str | None = None) -> None:
    """Move a finished temp folder into place as `out` (replacing it), marked as growlm's `kind`."""
    out = Path(out)
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


@contextlib.contextmanager
def atomic_dir(out: str | Path, force: bool = False, kind: str | None = None) -> Iterator[Path]:
    """Build a directory in a temp sibling and move it into place only when the body succeeds; `kind` marks it
    as growlm's (mark_folder, listing what the body wrote).

    On any error nothing partial is left behind and an existing output is untouched.
    """
    tmp = open_temp_dir(out, force)
    try:
        yield tmp
        commit_temp_dir(tmp, out, kind)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
