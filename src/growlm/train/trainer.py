"""The one training loop for every plan: constructive growth, LoRA phases and monolithic baselines.

A plan (growlm.train.plan) is a list of stages; each stage stacks new blocks (growlm.model.growth), freezes the
older ones unless the stage trains them, optionally adds LoRA adapters to the frozen blocks, and trains the rest
with a warm-up + cosine schedule re-warmed at the start of the stage. A fresh AdamW is created per stage because
the trainable set changes. A monolithic baseline is a one-stage plan.

Under torchrun the stage's model is replicated or sharded (growlm.train.parallel); between stages, for the growth
operators, LoRA merges, exports and checkpoints, it is the whole plain model on every process.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from growlm.config import RunConfig
from growlm.errors import GrowlmError
from growlm.faults import crash_point
from growlm.io.atomic import atomic_write_json
from growlm.model.folder import stage_meta, write_model
from growlm.model.growth import grow
from growlm.model.llama import build_model
from growlm.model.widen import widen
from growlm.precision import Precision
from growlm.train import checkpoint as ckpt
from growlm.train.dist import Dist
from growlm.train.flops import measured_peak_flops
from growlm.train.inputs import RunInputs, embedding_of
from growlm.train.lora import merge_lora
from growlm.train.metrics import MetricsLog, WandbRun
from growlm.train.parallel import Parallel
from growlm.train.plan import Plan
from growlm.train.records import CheckpointState, Progress, StageEnd, StageStart, StageSummary, TrainRow, ValRow
from growlm.train.rundir import RunDir
from growlm.train.stage import Stage, StageModel, prepare, rebuild
from growlm.train.step import LossModel


class TrainingDiverged(GrowlmError):
    exit_code = 3


@dataclass
class Clock:
    """Wall time of the stage's steps: since its start, and since the last train row (for tokens/s)."""

    start: float
    tick: float
    from_step: int  # the stage step this process started at (a resume starts mid-stage)


class Trainer:
    # Read the loss on the host after every step (and skip a non-finite step's update) or only when logging,
    # validating and checkpointing; None: every step on CPU, where reading costs nothing, lazily on CUDA, where it
    # would stall the queue of kernels.
    read_every_step: bool | None = None

    def __init__(
        self,
        cfg: RunConfig,
        run: RunDir,
        inputs: RunInputs,
        dist_info: Dist,
        precision: Precision,
        parallel: Parallel,
        recompute: bool = False,
    ):
        from growlm.data.loader import TokenWindows

        self.cfg, self.run, self.inputs, self.d = cfg, run, inputs, dist_info
        t = cfg.train
        per_rank = t.batch_size // (dist_info.world * t.grad_accum)
        if per_rank * dist_info.world * t.grad_accum != t.batch_size:
            raise GrowlmError(
                f"train.batch_size={t.batch_size} must be divisible by train.grad_accum={t.grad_accum} "
                f"x {dist_info.world} processes"
            )
        self.train_data = TokenWindows(
            inputs.shards, "train", cfg.model.context, per_rank, t.seed, rank=dist_info.rank, world_size=dist_info.world
        )
        self.val_data = TokenWindows(inputs.shards, "val", cfg.model.context, per_rank, t.seed)
        # each stage's training mixture (growth.stages.K.data; checked here, before anything trains)
        self.stage_data = [
            self.train_data.reweighted(s.data, f"growth.stages.{k}.data") if s.data else self.train_data
            for k, s in enumerate(cfg.growth.stages)
        ]
        if self.train_data.tokenizer_sha256 != inputs.tokenizer.sha256:
            raise GrowlmError(f"shards {inputs.shards} were made with another tokenizer; prepare them again")
        if dist_info.device.type == "cpu":
            torch.set_flush_denormal(True)
        self.precision = precision
        self.bf16 = precision.bf16
        self.peak_flops = measured_peak_flops(dist_info.device, self.bf16)
        self.plan = Plan(cfg)
        wandb = "wandb" in t.loggers and dist_info.main
        tracker = WandbRun(run.wandb, run.run_id(), cfg.name, cfg.model_dump()) if wandb else None
        self.metrics = MetricsLog(run.metrics, run.tensorboard, dist_info.main, t.loggers, tracker)
        self.progress = Progress()
        self.parallel = parallel
        self.recompute = recompute  # activation checkpointing of the trained blocks (growlm.train.memory)
        self.pending: ckpt.ShardedSave | None = None  # a sharded checkpoint still being written
        # where the whole model lives between stages: sharding moves each process's share to the device
        self.home = torch.device("cpu") if self.parallel.sharded else dist_info.device
        every = self.read_every_step
        self.eager_host = dist_info.device.type != "cuda" if every is None else every

    def embedding(self) -> torch.Tensor | None:
        return embedding_of(self.inputs, self.cfg.model.d_model)

    # ---- the run ----------------------------------------------------------------------------------------
    def fit(self, resume: bool, overrides: list[str] = ()) -> list[StageSummary]:
        """Train every stage of the plan (a resume from the newest intact checkpoint on); the stage summaries."""
        torch.manual_seed(self.cfg.train.seed)
        model = build_model(self.cfg.model, 0, self.embedding()).to(self.home)
        start_k, start_step, mid_stage = 0, 0, None
        last = ckpt.latest_checkpoint(self.run.checkpoints) if resume else None
        if resume and self.d.main:
            self.run.record_resume(list(overrides), last.name if last else None)
        if resume and last is None:
            self.metrics.truncate(-1)  # killed before its first checkpoint: start over
        if last is not None:
            restored, state = ckpt.restore(self.cfg, last, self.embedding())
            restored.model.to(self.home)
            self.progress = state.progress
            self.metrics.truncate(state.progress.step, state.stage + 1)
            if state.stage_complete:
                model, start_k = restored.model, state.stage + 1
            else:
                mid_stage, start_k, start_step = restored, state.stage, state.stage_step
            ckpt.restore_rng(last)
        summaries = self.run.read_summaries()[:start_k]
        for k in range(start_k, len(self.plan.stages)):
            if mid_stage is None:
                if self.plan.widens(k):
                    model = self.widened(model, k)
                grow(model, self.plan.stages[k].add_blocks, self.cfg.growth.init)
            prepared = mid_stage or prepare(self.plan, model, k)
            resume_optimizer = last if mid_stage else None
            model = self.run_stage(prepared, k, start_step if k == start_k else 0, resume_optimizer, summaries)
            mid_stage = None
            crash_point("stage")
        self.metrics.close()
        return summaries

    def widened(self, model, k: int):
        """The model widened to stage k's shape by growth.width_init (seeded by train.seed and the stage)."""
        shape = self.plan.models[k]
        seed = self.cfg.train.seed * 1000 + k
        return widen(model, shape.d_model, shape.n_heads, shape.ff, self.cfg.growth.width_init, seed)

    def run_stage(
        self, prepared: StageModel, k: int, start_step: int, resume_from: Path | None, summaries: list[StageSummary]
    ):
        """Train stage k, then export its model and summary, and only then record the stage-end checkpoint:
        a run stopped at any moment before that resumes into the stage and exports it again."""
        frozen_before = prepared.frozen_hashes()
        stage = Stage(self.plan, prepared, k, self.bf16, self.parallel, self.recompute)
        if resume_from is not None and not ckpt.load_sharded_optimizer(resume_from, stage.loss_model, stage.opt):
            saved = ckpt.load_optimizer_state(resume_from, stage.loss_model, stage.opt)  # an older checkpoint
            if saved is not None:
                self.parallel.load_optimizer_state(stage.loss_model, stage.opt, saved)
        self._announce(stage)
        at_start = self._val_at_start(stage, start_step)
        wall_start = time.perf_counter()
        self._train_steps(stage, start_step)
        self.finish_checkpoint()
        val = self._validate(stage)
        trained = self._whole(stage)
        if prepared.frozen_hashes(trained) != frozen_before:
            raise GrowlmError(
                f"stage {k + 1}: a frozen tensor changed during training; this is a bug, please report it"
            )
        model = merge_lora(trained) if stage.rank else trained
        p = self.progress
        summary = StageSummary(
            stage=k + 1,
            depth=stage.depth,
            add_blocks=self.plan.stages[k].add_blocks,
            lora_rank=stage.rank,
            trainable_params=stage.trainable,
            total_params=stage.total,
            tokens=p.tokens,
            flops=p.flops,
            val_loss_at_start=at_start,
            val_loss=val,
            wall_s=time.perf_counter() - wall_start,
            frozen_tensors=len(frozen_before),
            d_model=self.plan.models[k].d_model,
        )
        self._export(model, k, summary, frozen_before)
        summaries.append(summary)
        if self.d.main:
            self.run.write_summaries(summaries)
        self.metrics.log(StageEnd(p.step, summary))
        self._checkpoint(None, model, k, stage.steps, complete=True)
        return model

    def _whole(self, stage: Stage) -> torch.nn.Module:
        """The stage's model as one plain (LoRA-wrapped) module on every process: itself, or gathered from its
        shards into a fresh copy (the sharded one cannot be unsharded in place)."""
        if not self.parallel.sharded:
            return stage.model
        tensors = self.parallel.model_state(stage.loss_model)
        return rebuild(self.plan, stage.k, False, tensors).model.to(self.home)

    def _announce(self, stage: Stage) -> None:
        k, n_stages = stage.k, len(self.plan.stages)
        self.metrics.log(
            StageStart(
                stage=k + 1,
                depth=stage.depth,
                step=self.progress.step,
                trainable_params=stage.trainable,
                total_params=stage.total,
                lora_rank=stage.rank,
                budget=self.plan.budget,
                flops_per_token=stage.fpt.total,
                steps=stage.steps,
                parallel=self.parallel.mode,
                world=self.d.world,
                d_model=self.plan.models[k].d_model,
            )
        )
        if self.d.main:
            tqdm.write(
                f"stage {k + 1}/{n_stages}: depth {stage.depth}, {self.plan.stages[k].add_blocks} new "
                f"block(s){self._width_note(k)}, trainable {stage.trainable:,} of {stage.total:,} params"
                + (f", LoRA rank {stage.rank}" if stage.rank else "")
            )

    def _width_note(self, k: int) -> str:
        if not self.plan.widens(k):
            return ""
        before, after, stage = self.plan.models[k - 1], self.plan.models[k], self.plan.stages[k]
        old = "training" if stage.trains_old_blocks else "frozen but for their new rows and columns"
        return (
            f", widened {before.d_model}->{after.d_model} (heads {before.n_heads}->{after.n_heads}, MLP "
            f"{before.ff}->{after.ff}) by {self.cfg.growth.width_init}, earlier weights {old}"
        )

    # ---- steps ------------------------------------------------------------------------------------------
    def _train_steps(self, stage: Stage, start_step: int) -> None:
        t, k = self.cfg.train, stage.k
        bar = tqdm(
            total=stage.steps,
            initial=start_step,
            desc=f"stage {k + 1}/{len(self.plan.stages)} depth {stage.depth}",
            disable=not self.d.main,
            dynamic_ncols=True,
        )
        now = time.perf_counter()
        clock = Clock(start=now, tick=now, from_step=start_step)
        pending: list[tuple[int, int, torch.Tensor]] = []  # (stage step, global step, loss) not yet on the host
        for s in range(start_step, stage.steps):
            lr = self.plan.lr(k, s)
            pending.append((s, self.progress.step, self._step(stage, lr)))
            bar.update(1)
            done = s + 1
            logs = done % t.log_every == 0 or done == stage.steps
            validates = done % t.eval_every == 0 and done != stage.steps
            saves = done % t.checkpoint_every == 0 and done != stage.steps
            if self.eager_host or logs or validates or saves:
                loss_value = self._read_losses(pending, k)
                pending = []
            if logs:
                self._log_train(stage, done, loss_value, lr, clock, bar)
            if validates:
                self._validate(stage)
            if saves:
                self._checkpoint(stage, None, k, done, complete=False)
        bar.close()

    def _read_losses(self, pending: list[tuple[int, int, torch.Tensor]], k: int) -> float:
        """The losses of the steps since the last read, on the host; the last one, or TrainingDiverged at the
        first that is not finite."""
        for s, global_step, loss in pending:
            value = float(loss)
            if not math.isfinite(value):
                last = ckpt.latest_checkpoint(self.run.checkpoints)
                raise TrainingDiverged(
                    f"loss became {value} at stage {k + 1} step {s} (global step {global_step}); kept the last "
                    f"good checkpoint {last or '(none yet)'}; lower train.lr or use train.precision = 'fp32'"
                )
        return value

    def _step(self, stage: Stage, lr: float) -> torch.Tensor:
        """One optimizer step over grad_accum micro-batches; returns the loss averaged over processes (on the
        device: read on the host only where self.eager_host says, which then also skips a non-finite update)."""
        t = self.cfg.train
        for group in stage.opt.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)  # checkpoints before lr_scale have none
        loss_sum = torch.zeros((), device=self.d.device)
        for micro in range(t.grad_accum):
            batch = self._to_device(self.stage_data[stage.k].batch(self.progress.step * t.grad_accum + micro))
            last_micro = micro == t.grad_accum - 1 or self.d.world == 1
            with contextlib.nullcontext() if last_micro else self.parallel.no_sync(stage.forward):
                loss = stage.forward(batch) / t.grad_accum
                loss.backward()
            loss_sum += loss.detach()
        loss = self.d.mean_tensor(loss_sum)
        crash_point("step")
        if not self.eager_host or math.isfinite(float(loss)):
            stage.frozen_slices.zero_grads()
            if t.grad_clip:
                torch.nn.utils.clip_grad_norm_(stage.params, t.grad_clip)
            stage.frozen_slices.decay(stage.opt)
            stage.opt.step()
        stage.opt.zero_grad(set_to_none=True)
        tokens = self.plan.tokens_per_step
        self.progress = self.progress.advanced(tokens, stage.fpt.total * tokens)
        return loss

    def _to_device(self, batch: torch.Tensor) -> torch.Tensor:
        """On CUDA the copy runs from pinned memory, overlapping the previous step's kernels."""
        if self.d.device.type != "cuda":
            return batch
        return batch.pin_memory().to(self.d.device, non_blocking=True)

    def _log_train(self, stage: Stage, done: int, loss_value: float, lr: float, clock: Clock, bar) -> None:
        now = time.perf_counter()
        n = (done - clock.from_step) % self.cfg.train.log_every or self.cfg.train.log_every
        tps = n * self.plan.tokens_per_step / (now - clock.tick)
        clock.tick = now
        mfu = tps * stage.fpt.total / self.peak_flops
        bar.set_postfix(loss=f"{loss_value:.3f}", tok_s=f"{tps:,.0f}", mfu=f"{mfu:.1%}")
        self.metrics.log(
            TrainRow(stage.k + 1, stage.depth, self.progress, done, loss_value, lr, tps, mfu, now - clock.start)
        )

    # ---- validation, checkpoints, export ----------------------------------------------------------------
    @torch.no_grad()
    def val_loss(self, loss_model: LossModel) -> float:
        batches = self.val_data.val_batches(self.cfg.train.eval_batches)
        losses = [loss_model(b.to(self.d.device)).item() for b in batches]
        return sum(losses) / len(losses)

    def _validate(self, stage: Stage, at_start: bool = False) -> float:
        val = self.val_loss(stage.loss_model)
        self.metrics.log(ValRow(stage.k + 1, stage.depth, self.progress, val, at_start))
        return val

    def _val_at_start(self, stage: Stage, start_step: int) -> float | None:
        """Validation loss of the grown model before the stage trains: the height of the paper's growth spike.

        Stage 1 starts from nothing, so it has none; a resumed stage reads the value it logged before the stop.
        """
        if stage.k == 0:
            return None
        if start_step == 0:
            return self._validate(stage, at_start=True)
        logged = (r for r in self.metrics.rows() if isinstance(r, ValRow) and r.at_stage_start)
        return next((r.val_loss for r in logged if r.stage == stage.k + 1), None)

    def _checkpoint(self, stage: Stage | None, model, k: int, stage_step: int, complete: bool) -> None:
        """Mid-stage: the training stage's model and optimizer, each process writing its own shards (in the
        background with train.async_checkpoint, finished at the next checkpoint or the stage's end); at a stage
        end: the plain `model` every process holds, no optimizer, written by rank 0."""
        self.finish_checkpoint()
        state = CheckpointState(k, stage_step, complete, self.progress)
        t = self.cfg.train
        if stage is not None:
            content = ckpt.stage_state(stage.loss_model, stage.opt)
            self.pending = ckpt.ShardedSave(
                self.run.checkpoints, state, t.keep_checkpoints, self.d, content, t.async_checkpoint
            )
            if not t.async_checkpoint:
                self.finish_checkpoint()
            return
        if self.d.main:
            tensors = {name: v.detach() for name, v in model.state_dict().items()}
            ckpt.save_checkpoint(self.run.checkpoints, tensors, None, state, t.keep_checkpoints)
        self.d.barrier()

    def finish_checkpoint(self) -> None:
        """Finish the sharded checkpoint still being written, if any (every process calls it)."""
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending.finish()

    def _export(self, model, k: int, summary: StageSummary, frozen: dict) -> None:
        if not self.d.main:
            return
        substrate_sha256 = self.inputs.hashes()["substrate"]
        meta = stage_meta(self.cfg.substrate.kind, substrate_sha256, k + 1, self.cfg.name)
        atomic_write_json(self.run.frozen_hashes_file(k + 1), frozen)
        write_model(
            model,
            self.inputs.tokenizer,
            self.run.stage_model(k + 1),
            {**meta, "training": summary.to_json()},
            fault_point="export",
        )
