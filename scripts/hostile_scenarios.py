"""The multi-command scenarios of scripts/hostile_probe.py: SIGKILLs at awkward moments (GROWLM_FAULT) then a rerun
or `growlm grow --resume`, compared bit for bit with an uninterrupted run; and two writers of one run directory."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def temporaries(folder: Path) -> list[str]:
    return [
        str(p)
        for p in folder.rglob(".*")
        if p.name != ".growlm.lock" and (p.name.endswith((".tmp", ".old", ".prepare")) or p.is_dir())
    ]


def same_run(run: Path, ref: Path) -> str | None:
    """Why `run` differs from the uninterrupted `ref` (stage weights, every validation loss), or None."""

    def digest(p: Path) -> str:
        return hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "missing"

    def losses(r: Path) -> tuple[dict, list]:
        rows = [json.loads(x) for x in (r / "metrics.jsonl").read_text().splitlines()]
        val, ends = {}, [(x["stage"], x["val_loss"]) for x in rows if x["kind"] == "stage_end"]
        for x in rows:
            if x["kind"] == "val":
                key = (x["stage"], x["step"], bool(x.get("at_stage_start")))
                if val.setdefault(key, x["val_loss"]) != x["val_loss"]:
                    return {"conflict": key}, ends
        return val, ends

    for k in (1, 2):
        if digest(run / f"stages/{k}/model/model.safetensors") != digest(ref / f"stages/{k}/model/model.safetensors"):
            return f"stage {k} model.safetensors differs from the uninterrupted run"
    if losses(run) != losses(ref):
        return f"validation losses differ: {losses(run)} vs {losses(ref)}"
    summary = [s["val_loss"] for s in json.loads((run / "stages/summary.json").read_text())]
    if summary != [s["val_loss"] for s in json.loads((ref / "stages/summary.json").read_text())]:
        return "stages/summary.json val_loss differs"
    left = temporaries(run)
    return f"temporaries left: {left}" if left else None


def same_tree(a: Path, b: Path) -> str | None:
    """Why folder `a` differs from `b` (names and bytes), or None; and no temporaries beside `a`."""

    def files(root: Path) -> dict:
        return {
            p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*")
            if p.is_file()
        }

    fa, fb = files(a), files(b)
    if fa != fb:
        return "differs from the uninterrupted output: " + ", ".join(sorted(set(fa.items()) ^ set(fb.items()))[0])
    left = temporaries(a.parent)
    return f"temporaries left: {left}" if left else None


def kill_then_resume(
    probe,
    name: str,
    faults: list[str],
    first: str = "grow {cfg} --out {run}",
    then: str = "grow --resume --out {run}",
    fresh: bool = False,
):
    """SIGKILL at each fault in turn (the first on `first`, the others on `then`), then `then` to the end; the
    result must equal the reference run (or, when `fresh`, the same command run uninterrupted into RUN-ref)."""
    w = probe.w
    run = w.root / "kills" / name.replace(" ", "-").replace(",", "").replace("'", "")
    fmt = {**w.paths, "run": str(run)}

    def go(argv: str, env, expect: int, done: list, target: Path = run):
        args = argv.format(**{**fmt, "run": str(target)}).split()
        rc, _, err = w._run(args, w.root, env, 120)
        done.append(("GROWLM_FAULT=" + env["GROWLM_FAULT"] + " " if env else "") + "growlm " + " ".join(args))
        bad = rc != expect or "Traceback" in err
        return rc, err, (f"exit {rc} where {expect} was due (command {len(done)})" if bad else None)

    def scenario():
        done: list[str] = []
        if fresh:
            rc, err, why = go(then, None, 0, done, run.with_name(run.name + "-ref"))
            if why:
                return rc, err, why, " ; ".join(done)
        for i, fault in enumerate(faults):
            rc, err, why = go(first if i == 0 else then, {"GROWLM_FAULT": fault}, -9, done)
            if why:
                return rc, err, why, " ; ".join(done)
        rc, err, why = go(then, None, 0, done)
        if why is None:
            why = same_tree(run, run.with_name(run.name + "-ref")) if fresh else same_run(run, w.p("ref"))
        return rc, err, why, " ; ".join(done)

    probe.scenario(f"kill: {name}", scenario)


def kill_cases(probe) -> None:
    kill_then_resume(probe, "at optimizer step 2", ["step:2"])
    kill_then_resume(probe, "writing stage-1-end checkpoint", ["checkpoint:2"])
    kill_then_resume(probe, "exporting stage 2", ["export:2"])
    kill_then_resume(probe, "between stages", ["stage:1"])
    kill_then_resume(probe, "writing summary.json", ["write summary.json:1"])
    kill_then_resume(probe, "writing checkpoints/latest", ["write latest:3"])
    kill_then_resume(probe, "step 4, then the resume's 1st ckpt", ["step:4", "checkpoint:1"])
    kill_then_resume(
        probe, "writing the header, then --force", ["write manifest.json:1"], then="grow {cfg} --out {run} --force"
    )
    w = probe.w
    docs = [json.loads(line)["text"] for line in w.p("docs").read_text().splitlines()]
    w.add("docs2", w.root / "docs2.jsonl").write_text("".join(json.dumps({"text": d.upper()}) + "\n" for d in docs))
    prep = "data prepare --source {docs} --source {docs2} --tokenizer {tok} --workers 1 --out {run}"
    kill_then_resume(probe, "data prepare, after file 1", ["prepare:1"], first=prep, then=prep, fresh=True)
    compose = "compose {model1} {model} --out {run}"
    kill_then_resume(
        probe, "compose writing composition.json", ["write composition.json:1"], first=compose, then=compose, fresh=True
    )


def two_writers(probe) -> None:
    """A long grow holds the run directory; a second grow, a --resume and an eval-run must be refused."""
    w = probe.w
    run = w.add("two", w.root / "two")
    cmd = [
        sys.executable,
        "-m",
        "growlm",
        "grow",
        w.paths["cfg"],
        "--out",
        str(run),
        "--set",
        "growth.stages.1.tokens=40000",
        "--set",
        "train.eval_every=100000",
        "--set",
        "train.checkpoint_every=100000",
    ]
    holder = subprocess.Popen(
        cmd, cwd=w.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.time() + 90
        while not (run / "stages/1/model/growlm.json").is_file() and holder.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        for name, argv in (
            ("grow", "grow {cfg} --out {two}"),
            ("grow --resume", "grow --resume --out {two}"),
            ("eval-run", "eval-run {two} --tasks perplexity --no-progress"),
        ):

            def busy(rc, out, err):
                if holder.poll() is not None:
                    return "the first writer had ended: the probe proves nothing"
                return None if "is being written by pid" in err else "not refused as being written"

            probe.case(f"two writers: grow + {name}", argv, check=busy)
    finally:
        if holder.poll() is None:
            os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
