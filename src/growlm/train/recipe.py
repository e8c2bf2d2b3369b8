"""The grow recipe: config -> run directory -> inputs -> training -> exported stage models.

The one path from a config to a trained run, used by `growlm grow`, the studies and `growlm.grow(...)`.
Under torchrun every process calls it; only rank 0 writes the run directory.

A run may start from a finished one (`grow(cfg, out, start=Branch(RUN))`, `growlm grow CONFIG --from RUN`): `branch`
copies RUN into the new folder with the new config, whose first stages must be RUN's stages exactly, and the new run
then resumes after them, training only its later stages. So one trained base model is grown, adapted or continued on
new data in several ways without training it again, and every branch's metrics and summaries include the base's.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from growlm.config import RunConfig, load_config, read_toml
from growlm.data.mix import parse_sources
from growlm.errors import GrowlmError
from growlm.io.outputs import check_not_input, check_replaceable, clear_folder
from growlm.io.temporaries import LOCK_FILE
from growlm.precision import Precision, choose
from growlm.train import parallel
from growlm.train.dist import Dist, init_distributed
from growlm.train.inputs import RunInputs, resolve_inputs
from growlm.train.records import StageSummary
from growlm.train.rundir import RunDir
from growlm.train.start import Branch, New, Resume, Start

# Config keys a resume may change: they steer logging, validation, checkpoints, threads and how the processes share
# the model, never the training.
RESUME_SAFE = (
    "train.log_every",
    "train.eval_every",
    "train.eval_batches",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "train.async_checkpoint",
    "train.activation_checkpointing",
    "train.threads",
    "train.device",
    "train.parallel",
    "train.collective_timeout_s",
    "train.loggers",
)


@dataclass
class GrowResult:
    run: RunDir
    summaries: list[StageSummary] | None  # None on every process but the main one

    def stage_model(self, stage: int | None = None) -> Path:
        """The exported model after `stage` (default: the last)."""
        return self.run.stage_model(stage or len(self.summaries))


def run_config(
    config: str | Path | RunConfig | None, out: str | Path | None, overrides: list[str], resume: bool
) -> tuple[RunConfig, RunDir]:
    """The config to train with and its run directory; a resume reads the run's own config."""
    if resume:
        if not out:
            raise GrowlmError("`resume` needs `out`, the run directory to continue")
        run = RunDir(out)
        if not run.path.is_dir():
            raise GrowlmError(f"cannot resume {run.path}: no such folder; start the run without `resume`")
        if not run.config_file.is_file():
            raise GrowlmError(
                f"cannot resume {run.path}: it stopped before its header ({run.config_file.name}) was "
                "written, so there is nothing to continue; start it over with `force`"
            )
        check_resume_overrides(overrides)
        cfg = run.read_config(overrides)
        if config is not None and _as_config(config, []).model_dump() != run.read_config().model_dump():
            raise GrowlmError(
                f"{config} differs from the config of {run.path}; resume without a config, or start a new run"
            )
        return cfg, run
    if config is None:
        raise GrowlmError("give a config, e.g. `growlm grow configs/demo.toml`")
    cfg = _as_config(config, overrides)
    return cfg, RunDir(out or Path("runs") / cfg.name)


def check_resume_overrides(overrides: list[str]) -> None:
    """A resume continues the same training: only RESUME_SAFE keys may be set."""
    for assignment in overrides:
        key = assignment.partition("=")[0].strip()
        if key not in RESUME_SAFE:
            raise GrowlmError(
                f"`resume` with {key} in `overrides`: a resumed run trains exactly as it started, so {key} cannot "
                f"change; only {', '.join(RESUME_SAFE)} can; start a new run to change it"
            )


def _as_config(config: str | Path | RunConfig, overrides: list[str]) -> RunConfig:
    if isinstance(config, RunConfig):
        return load_config(None, overrides, base=config) if overrides else config
    if not overrides and not read_toml(config):
        raise GrowlmError(
            f"config {config} is empty (it sets no key), so growlm would train its defaults (d_model "
            "256 on Shakespeare); give a config (see configs/) or set what you mean with `overrides`"
        )
    return load_config(config, overrides)


def input_paths(cfg: RunConfig) -> list[str]:
    """The folders and files a run reads that the config names (a new run's `out` must not be one of them)."""
    sources = (name.partition("#")[0] for name, _ in parse_sources(cfg.data.sources, "data.sources"))
    return [cfg.tokenizer.path, cfg.data.shards, cfg.substrate.path, *(s for s in sources if Path(s).exists())]


def fresh_run_dir(run: RunDir, force: bool) -> None:
    """Refuse an output that is not free (a run there needs `resume` or `force`; `force` replaces only what
    growlm made); io.outputs.check_replaceable holds the rule."""
    if run.config_file.is_file() and not force:
        raise GrowlmError(
            f"run directory {run.path} exists; pass `resume` to continue it, `force` to replace it, "
            "or choose another `out`"
        )
    check_replaceable(run.path, force)


def open_run_dir(run: RunDir, start: Start):
    """Become the one writer of `run` (its lock, held until closed); a new run starts empty, a resumed one (or a
    branch, resuming its copy of the base) loses the temporaries its killed predecessor left."""
    if not run.lock_file.is_file() and isinstance(start, New):
        fresh_run_dir(run, start.force)  # before the lock file is made, so a refused folder is left as it was
    lock = run.acquire()
    try:
        if isinstance(start, New):
            fresh_run_dir(run, start.force)
            clear_folder(run.path)
        else:
            run.clean_temporaries()
        run.mark()
    except BaseException:
        lock.close()
        raise
    return lock


def _inputs(cfg: RunConfig, run: RunDir, d: Dist) -> RunInputs:
    """Rank 0 builds what the run needs first; the others then read it."""
    inputs = resolve_inputs(cfg, run) if d.main else None
    d.barrier()
    return inputs if inputs is not None else resolve_inputs(cfg, run)


def run_precision(cfg: RunConfig, run: RunDir, d: Dist, resume: bool) -> Precision:
    """What the run computes in: chosen once, when it starts (rank 0's choice on every process); a resume keeps
    the choice its manifest recorded, so it continues exactly as it started, and warns if bf16 is slow here."""
    recorded = run.read_manifest().get("precision") if resume else None
    if recorded is not None:
        precision = Precision.from_json(recorded)
        note = " (recorded when the run started)"
        slow = choose("bf16", d.device).warning() if precision.bf16 and d.device.type == "cpu" else None
    else:  # a new run, or one started before growlm recorded its precision ("bf16" or "fp32" then)
        precision = d.from_main(choose(cfg.train.precision, d.device))
        note, slow = "", precision.warning()
    if d.main:  # on stdout with the stage lines: stderr stays one line when the run then fails
        print(precision.describe() + note)
        if slow:
            print(slow)
    return precision


# Growth settings that only stages after a one-stage base use (the first stage builds its blocks at random under
# every operator and has no LoRA): a branch of such a base may choose them anew.
LATER_STAGE_GROWTH = ("init", "budget_factor", "lora_alpha_ratio", "lora_max_rank")


def branch_mismatch(base: RunConfig, cfg: RunConfig) -> str | None:
    """Why `cfg` does not train `base`'s stages exactly as base did (None when it does)."""
    a, b = base.model_dump(exclude={"name"}), cfg.model_dump(exclude={"name"})
    n = len(base.growth.stages)
    if len(cfg.growth.stages) <= n:
        return f"it has {len(cfg.growth.stages)} stage(s), so it adds none to the base's {n}"
    for k in range(n):
        if a["growth"]["stages"][k] != b["growth"]["stages"][k]:
            return f"its growth.stages.{k} differs from the base's"
    free = LATER_STAGE_GROWTH if n == 1 else ()
    for section in a:
        if section == "growth":
            keys = [key for key in a[section] if key != "stages" and key not in free]
        else:
            keys = list(a[section])
        for key in keys:
            if a[section][key] != b[section][key] and f"{section}.{key}" not in RESUME_SAFE:
                return f"its {section}.{key} is {b[section][key]!r}, the base's is {a[section][key]!r}"
    return None


def branch(base: RunDir, run: RunDir, cfg: RunConfig, force: bool = False) -> None:
    """Make `run` a copy of the finished run `base` with `cfg` as its config, ready to resume after base's stages
    (see the module docstring). The base is only read."""
    from growlm.model.folder import is_model_folder
    from growlm.train import checkpoint as ckpt

    if not base.config_file.is_file():
        raise GrowlmError(f"`base` {base.path}: not a growlm run directory (no {base.config_file.name})")
    base_cfg = base.read_config()
    n = len(base_cfg.growth.stages)
    last = ckpt.latest_checkpoint(base.checkpoints)
    if not is_model_folder(base.stage_model(n)) or last is None or not last.name.endswith("-stage-end"):
        raise GrowlmError(f"`base` {base.path}: the run has not finished its {n} stage(s); resume it first (`resume`)")
    why = branch_mismatch(base_cfg, cfg)
    if why:
        raise GrowlmError(
            f"`base` {base.path}: the config cannot continue that run: {why}; its first {n} stage(s) and "
            "every other setting must be the base's"
        )
    fresh_run_dir(run, force)
    if run.path.exists():
        shutil.rmtree(run.path)
    # everything but the writer's lock and the trackers' own folders (the branch logs afresh)
    skip = {LOCK_FILE, "tensorboard", "wandb"}
    shutil.copytree(base.path, run.path, ignore=lambda folder, names: [x for x in names if x in skip])
    run.write_branch_header(cfg, base)


def prepare_run(
    config: str | Path | RunConfig | None, out: str | Path | None, overrides: list[str], start: Start
) -> tuple[RunConfig, RunDir]:
    """The config to train with and its run directory. A branch is made here (a copy of its base with the new
    config), so that training then resumes it after the base's stages."""
    if isinstance(start, Resume):
        return run_config(config, out, overrides, resume=True)
    cfg, run = run_config(config, out, overrides, resume=False)
    if isinstance(start, Branch):
        check_not_input(run.path, [*input_paths(cfg), str(start.base)])
        branch(RunDir(start.base), run, cfg, start.force)
        return run.read_config(), run
    check_not_input(run.path, input_paths(cfg))  # `force` would clear what the run reads
    return cfg, run


def grow(
    config: str | Path | RunConfig | None = None,
    out: str | Path | None = None,
    overrides: list[str] = (),
    start: Start = New(),
    check_memory: bool = True,
) -> GrowResult:
    """Train a run by its growth plan (monolithic baselines are one-stage plans); see the module docstring.
    `start`: New() (the default), Resume() or Branch(base), see growlm.train.start."""
    from growlm.train.memory import check_fits, recompute_blocks
    from growlm.train.trainer import Trainer

    cfg, run = prepare_run(config, out, list(overrides), start)
    resume = not isinstance(start, New)  # a branch resumes its copy of the base
    d = init_distributed(cfg.train.device, cfg.train.collective_timeout_s)
    mode, why = parallel.choose(cfg, d)
    recompute = d.from_main(recompute_blocks(cfg, d, sharded=mode == "fsdp"))  # every process decides alike
    if check_memory:
        check_fits(cfg, d, sharded=mode == "fsdp", recompute=recompute)
    lock = open_run_dir(run, start) if d.main else None
    try:
        d.barrier()
        if cfg.train.threads:
            import torch

            torch.set_num_threads(cfg.train.threads)
        inputs = _inputs(cfg, run, d)
        if resume:
            run.check_resume(inputs)
        precision = run_precision(cfg, run, d, resume)
        if not resume and d.main:
            run.write_header(cfg, inputs, precision)
        if d.main and d.world > 1:
            print(f"parallel: {mode} over {d.world} processes ({why})")
        if d.main and recompute:
            print(
                f"activation checkpointing: the trained blocks (train.activation_checkpointing = "
                f"{cfg.train.activation_checkpointing!r})"
            )
        spread = parallel.Parallel(mode, d, precision.bf16)
        recorded = list(overrides) if isinstance(start, Resume) else []  # a resume records what it changed
        trainer = Trainer(cfg, run, inputs, d, precision, spread, recompute)
        summaries = trainer.fit(resume=resume, overrides=recorded)
    finally:
        if lock is not None:
            lock.close()
    return GrowResult(run, summaries if d.main else None)
