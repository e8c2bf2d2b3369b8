#!/usr/bin/env python
"""Hostile probe of the growlm CLI: fresh bad inputs, as a hostile new user would try them.

What it checks (cases new relative to docs/ERRORS.md, each run as a subprocess `python -m growlm ...`, one at a
time): bad configs, --set values and CLI values; corrupt, truncated and hostile files (model folders shipping
code or pickles, truncated weights, garbage growlm.json, tampered compositions, checkpoints, shards, tokenizers,
substrates); --force/--out against folders and files the user owns, symlinks to them, --out equal to an input;
SIGKILLs at awkward moments (GROWLM_FAULT) followed by a rerun or `growlm grow --resume`, compared bit for bit
(stage weights, every validation loss) with an uninterrupted run; and two writers of one run directory.
A case is OK when it exits 2 (0 where success is right) with one message line and no traceback, leaves every
user-owned decoy and every input it reads unchanged (hashed before and after), runs no shipped code (the hostile
.py files and pickles write a marker file when executed) and passes its own check; FAIL otherwise.

Run:  .venv/bin/python scripts/hostile_probe.py [--keep DIR] [--only SUBSTRING]
      (about 7 minutes on 2 cores; --keep builds in DIR and leaves it; exit status 1 when any case FAILs)
The cases are in scripts/hostile_cases.py and scripts/hostile_scenarios.py; this file runs them one at a time
and prints the table (case, exit code, verdict, first stderr line), then each FAIL's command and stderr tail.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hostile_cases  # the case table, next to this file

GROWLM = [sys.executable, "-m", "growlm"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1", "PYTHONWARNINGS": "ignore"}
ENV.pop("GROWLM_FAULT", None)


def run(argv: list[str], cwd: Path, env: dict | None = None, timeout: float = 120) -> tuple[int, str, str]:
    """One growlm process, in its own session so that a timeout kills it (and only it) by process group."""
    proc = subprocess.Popen(
        [*GROWLM, *argv],
        cwd=cwd,
        env={**ENV, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return 124, out, err + f"\n[probe: killed after {timeout:.0f} s]"
    return proc.returncode, out, err


def snapshot(path: Path) -> dict[str, str]:
    """Each entry under `path` (not following symlinks): its kind, mode, content or link target. A case may add
    entries to a user's folder it was told to write into, never change or remove one."""
    if path.is_symlink():
        return {".": "link " + os.readlink(path)}
    if not path.exists():
        return {}
    found = {}
    for p in [path, *(sorted(path.rglob("*")) if path.is_dir() else [])]:
        rel = p.relative_to(path).as_posix()
        if p.is_symlink():
            found[rel] = "link " + os.readlink(p)
        elif p.is_dir():
            found[rel] = f"dir {p.stat().st_mode:o}"
        else:
            found[rel] = f"file {p.stat().st_mode:o} {hashlib.sha256(p.read_bytes()).hexdigest()}"
    return found


def changed(before: dict[str, dict], after: dict[str, dict]) -> list[str]:
    return [
        f"{Path(top).name}/{rel}".removesuffix("/.")
        for top, entries in before.items()
        for rel, sig in entries.items()
        if after[top].get(rel) != sig
    ]


def message_lines(err: str) -> list[str]:
    """stderr without progress bars, argparse usage lines and growlm's own warnings/notes."""
    lines = []
    for line in err.replace("\r", "\n").splitlines():
        s = line.strip()
        if not s or "it/s" in s or "s/it" in s or "%|" in s or "B/s]" in s:
            continue
        if s.startswith("usage:") or (line.startswith(" ") and not lines):
            continue
        if s.startswith(("growlm: warning:", "growlm: removed")):
            continue
        lines.append(s)
    return lines


def judge(rc: int, err: str, expect: tuple[int, ...]) -> str | None:
    """Why the exit/stderr part of a case fails, or None."""
    if "Traceback" in err:
        return "Python traceback"
    if rc not in expect:
        return f"exit {rc}, expected {'/'.join(map(str, expect))}"
    if rc != 0:
        said = message_lines(err)
        if len(said) != 1:
            return f"{len(said)} message lines, expected 1"
        if "error" not in said[0] and "interrupted" not in said[0]:
            return "the message is not an error line"
    return None


class Probe:
    def __init__(self, root: Path, only: str | None):
        self.w = hostile_cases.World(root, run)
        self.only, self.rows, self.failures = only, [], []

    def guarded(self, protect=()) -> dict[str, dict]:
        return {str(p): snapshot(p) for p in [*self.w.decoys(), *self.w.inputs(), *protect]}

    def case(
        self, name: str, argv: str | list[str], expect=(2,), env=None, protect=(), check=None, timeout: float = 120
    ) -> None:
        if self.only and self.only not in name:
            return
        args = shlex.split(argv.format(**self.w.paths)) if isinstance(argv, str) else argv
        protect = [Path(str(p).format(**self.w.paths)) for p in protect]
        before, start = self.guarded(protect), time.time()
        rc, out, err = run(args, self.w.root, env, timeout)
        why = judge(rc, err, tuple(expect))
        why = why or self.damage(before, protect)
        if why is None and check is not None:
            why = check(rc, out, err)
        self.record(name, rc, why, err, " ".join(shlex.quote(a) for a in args), env, time.time() - start)

    def damage(self, before: dict, protect=()) -> str | None:
        lost = changed(before, self.guarded(protect))
        if lost:
            return "changed or removed: " + ", ".join(lost[:4]) + (" ..." if len(lost) > 4 else "")
        return "shipped code ran (marker written)" if self.w.marker.exists() else None

    def scenario(self, name: str, body) -> None:
        """A multi-command case: body() -> (last exit code, its stderr, why it fails or None, commands run)."""
        if self.only and self.only not in name:
            return
        before, start = self.guarded(), time.time()
        rc, err, why, commands = body()
        why = why or self.damage(before)
        self.record(name, rc, why, err, commands.removeprefix("growlm "), None, time.time() - start)

    def record(self, name, rc, why, err, command, env=None, seconds=0.0) -> None:
        said = message_lines(err)
        first = said[0] if said else (err.strip().splitlines() or [""])[-1]
        self.rows.append((name, rc, "OK" if why is None else "FAIL", first[:110], seconds))
        if why is not None:
            prefix = " ".join(f"{k}={v}" for k, v in (env or {}).items())
            self.failures.append((name, why, f"{prefix} growlm {command}".strip(), err.strip()[-1500:]))
        print(f"{'OK  ' if why is None else 'FAIL'} {name:<38} exit {rc:>4}  {seconds:5.1f}s  {first[:80]}", flush=True)

    def report(self) -> int:
        width = max(len(r[0]) for r in self.rows)
        print(f"\n{'case':<{width}}  exit  verdict  first stderr line")
        for name, rc, verdict, first, _ in self.rows:
            print(f"{name:<{width}}  {rc:>4}  {verdict:<7}  {first}")
        ok = sum(r[2] == "OK" for r in self.rows)
        print(f"\n{len(self.rows)} cases: {ok} OK, {len(self.rows) - ok} FAIL")
        for name, why, command, tail in self.failures:
            print(f"\n--- FAIL {name}: {why}\n$ {command}\n{tail}")
        return 1 if self.failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="build the probe's world in this folder and leave it there")
    parser.add_argument("--only", help="run only the cases whose name contains this text")
    args = parser.parse_args()
    root = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="growlm-hostile-"))
    if args.keep and root.exists() and any(root.iterdir()):
        parser.error(f"--keep {root} is not empty; give a new or empty folder")
    root.mkdir(parents=True, exist_ok=True)
    start = time.time()
    try:
        probe = Probe(root, args.only)
        print(f"world built in {root} in {time.time() - start:.0f} s", flush=True)
        hostile_cases.run_all(probe)
        code = probe.report()
        print(f"\nprobe took {time.time() - start:.0f} s")
        return code
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
