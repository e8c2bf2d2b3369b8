"""THE run directory: every path of a run, its header (resolved config + manifest) and its stage outputs.

RUN/config.resolved.toml   the config with every default filled in
RUN/manifest.json          hashes of tokenizer, data and substrate, code commit, machine, precision chosen, run id
RUN/metrics.jsonl          see growlm.train.metrics;  RUN/tensorboard/, RUN/wandb/ (train.loggers)
RUN/checkpoints/           see growlm.train.checkpoint
RUN/tokenizer, data, substrate   inputs built into the run when the config names none
RUN/stages/summary.json    one StageSummary per finished stage (growlm.train.records)
RUN/stages/<k>/model       the exported model after stage k (growlm.model.folder), with frozen_hashes.json beside it
RUN/eval_by_depth.*        written by `growlm eval-run`
RUN/resumes.jsonl          one row per `--resume`: {"time", "overrides", "checkpoint", "pid", "host"}
RUN/.growlm.lock           held (fcntl.flock) by the one process writing the run; holds its pid, host, start time
RUN/.growlm-folder.json    the mark: a run directory, and the names in it (io.ownership.mark_folder; see `entries`)
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import IO

import growlm
from growlm.config import RunConfig, load_config, to_toml
from growlm.errors import GrowlmError
from growlm.io.atomic import atomic_write_json, atomic_write_text, read_json
from growlm.io.hashing import sha256_bytes
from growlm.io.ownership import claim_folder
from growlm.io.temporaries import LOCK_FILE, is_temporary
from growlm.provenance import git_commit, machine
from growlm.train import input_files
from growlm.train.records import StageSummary

RUN_MARKERS = ("metrics.jsonl", "config.resolved.toml")
KIND = "run directory"
_REPAIR = "restore it, or start the run over with `force`"  # how a damaged record of the run is fixed


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        p = self.path
        self.config_file, self.manifest_file = p / "config.resolved.toml", p / "manifest.json"
        self.metrics, self.tensorboard, self.checkpoints = p / "metrics.jsonl", p / "tensorboard", p / "checkpoints"
        self.wandb = p / "wandb"
        self.tokenizer, self.data, self.substrate = p / "tokenizer", p / "data", p / "substrate"
        self.stages, self.summary_file = p / "stages", p / "stages" / "summary.json"
        self.resumes, self.lock_file = p / "resumes.jsonl", p / LOCK_FILE

    def entries(self) -> set[str]:
        """The names the run writes at its top level (evaluation and reports add theirs: io.ownership.add_entries)."""
        own = (self.config_file, self.manifest_file, self.metrics, self.tensorboard, self.checkpoints, self.tokenizer)
        return {p.name for p in (*own, self.data, self.substrate, self.stages, self.resumes, self.wandb)}

    def mark(self) -> None:
        """Mark the folder as a run directory (io.claim_folder), keeping what is in it and what its mark listed."""
        claim_folder(self.path, KIND, self.entries())

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @staticmethod
    def is_run(path: str | Path) -> bool:
        return any((Path(path) / name).is_file() for name in RUN_MARKERS)

    @classmethod
    def of_stage_model(cls, model: str | Path) -> "RunDir | None":
        """The run a stage model (RUN/stages/<k>/model) belongs to, or None."""
        stages = Path(model).resolve().parent.parent
        run = cls(stages.parent)
        return run if stages.name == "stages" and run.config_file.is_file() else None

    # ---- stages --------------------------------------------------------------------------------------------
    def stage_dir(self, stage: int) -> Path:
        return self.stages / str(stage)

    def stage_model(self, stage: int) -> Path:
        return self.stage_dir(stage) / "model"

    def frozen_hashes_file(self, stage: int) -> Path:
        return self.stage_dir(stage) / "frozen_hashes.json"

    def stage_models(self) -> list[tuple[int, Path]]:
        """(stage number, model folder) for every exported stage, by stage."""
        if not self.stages.is_dir():
            return []
        return sorted(
            (int(p.name), p / "model") for p in self.stages.iterdir() if p.name.isdigit() and (p / "model").is_dir()
        )

    def read_summaries(self) -> list[StageSummary]:
        if not self.summary_file.is_file():
            return []
        return [StageSummary.from_json(s, str(self.summary_file)) for s in read_json(self.summary_file, _REPAIR, list)]

    def write_summaries(self, summaries: list[StageSummary]) -> None:
        atomic_write_json(self.summary_file, [s.to_json() for s in summaries])

    # ---- header --------------------------------------------------------------------------------------------
    def read_config(self, overrides: list[str] = ()) -> RunConfig:
        if not self.config_file.is_file():
            raise GrowlmError(f"{self.path} has no config.resolved.toml; it is not a growlm run directory")
        return load_config(self.config_file, overrides)

    def shards(self) -> Path:
        """The shard folder the run trained on."""
        shards = self.read_config().data.shards
        return Path(shards) if shards else self.data

    def read_manifest(self) -> dict:
        return read_json(self.manifest_file, _REPAIR, dict)

    def run_id(self) -> str:
        """The run's identity for experiment trackers: drawn when it started, kept by every resume (a run
        started before growlm recorded one: derived from its folder)."""
        recorded = self.read_manifest().get("run_id")
        return recorded or sha256_bytes(str(self.path.resolve()).encode())[:16]

    def write_header(self, cfg: RunConfig, inputs, precision) -> None:
        text = to_toml(cfg)
        atomic_write_text(self.config_file, text)
        atomic_write_json(
            self.manifest_file,
            {
                "growlm_version": growlm.__version__,
                "git_commit": git_commit(),
                "config_sha256": sha256_bytes(text.encode()),
                "hashes": inputs.hashes(),
                "substrate_manifest": inputs.substrate.manifest if inputs.substrate is not None else None,
                "tokenizer_path": str(Path(cfg.tokenizer.path).resolve()) if cfg.tokenizer.path else "tokenizer",
                "shards_path": str(inputs.shards.resolve()),
                "token_files": input_files.stamps(inputs.shards),
                "machine": machine(),
                "precision": precision.to_json(),
                "run_id": uuid.uuid4().hex[:16],
            },
        )

    def write_branch_header(self, cfg: RunConfig, base: RunDir) -> None:
        """The header of a run copied from `base` (recipe.branch): the new config, base's manifest with a run id
        of its own and the base it came from."""
        manifest = base.read_manifest()
        atomic_write_text(self.config_file, to_toml(cfg))
        manifest.update(
            config_sha256=sha256_bytes(to_toml(cfg).encode()),
            run_id=uuid.uuid4().hex[:16],
            branched_from={
                "path": str(base.path.resolve()),
                "run_id": base.run_id(),
                "stages": len(base.read_summaries()),
            },
        )
        atomic_write_json(self.manifest_file, manifest)

    def check_resume(self, inputs) -> None:
        manifest = self.read_manifest()
        for key, value in inputs.hashes().items():
            if manifest["hashes"].get(key) != value:
                raise GrowlmError(
                    f"cannot resume {self.path}: the {key} hash differs from the run's manifest "
                    f"({str(manifest['hashes'].get(key))[:12]} vs {str(value)[:12]}); resume with the "
                    "run's own inputs or start a new run"
                )
        problem = input_files.changed(inputs.shards, manifest.get("token_files") or {})  # {}: made before stamps
        if problem:
            raise GrowlmError(
                f"cannot resume {self.path}: {problem}; restore the file, or start a new run on these shards"
            )

    # ---- one writer, resumes, leftovers of a killed process ------------------------------------------------
    def acquire(self) -> IO:
        """Hold RUN/.growlm.lock until the returned file is closed or the process dies (then the OS drops it)."""
        import fcntl

        self.path.mkdir(parents=True, exist_ok=True)
        lock = open(self.lock_file, "a+", encoding="utf-8")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            lock.close()
            raise GrowlmError(
                f"run directory {self.path} is being written by {holder} (one writer per run); wait for it to end "
                "(or stop it) and run this again"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()} on host {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n")
        lock.flush()
        return lock

    def clean_temporaries(self) -> None:
        """Remove the temp files and folders a killed process left (only while holding the lock)."""
        found = [p for p in self.path.rglob(".*") if is_temporary(p.name) and p.name != LOCK_FILE]
        for p in sorted(found, key=lambda p: len(p.parts)):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            elif p.exists():
                p.unlink()
        if found:
            print(
                f"growlm: removed {len(found)} temporary file(s) left in {self.path} by an interrupted run",
                file=sys.stderr,
            )

    def record_resume(self, overrides: list[str], checkpoint: str | None) -> None:
        row = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "overrides": list(overrides),
            "checkpoint": checkpoint,
            "pid": os.getpid(),
            "host": socket.gethostname(),
        }
        with open(self.resumes, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
