"""The one training loop for every plan: constructive growth, LoRA phases and monolithic baselines.

A plan is a list of stages; each stage stacks `add_blocks` new blocks, freezes the older ones (unless
`train_old_blocks`), optionally adds LoRA adapters to the frozen blocks, and trains the new blocks, the final
norm and the LM head for `tokens` tokens with a warm-up + cosine schedule re-warmed at the start of the stage.
A fresh AdamW is created per stage because the trainable set changes. A monolithic baseline is a one-stage plan.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from growlm import checkpoint as ckpt
from growlm.config import RunConfig, StageConfig
from growlm.errors import GrowlmError
from growlm.flops import flops_per_token, measured_peak_flops
from growlm.growth import (add_lora, base_model, frozen_tensor_hashes, grow, lora_params_per_rank, merge_lora,
                           set_trainable, solve_lora_rank)
from growlm.io import atomic_write_json
from growlm.model import build_model, count_params, export_model, llama_config
from growlm.run import RunInputs
from growlm.stepper import LossModel


class TrainingDiverged(GrowlmError):
    exit_code = 3


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device_pref: str) -> Dist:
    use_cuda = device_pref == "cuda" or (device_pref == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise GrowlmError("train.device = 'cuda' but no CUDA device is visible; use train.device = 'cpu'")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist(0, 1, torch.device("cuda" if use_cuda else "cpu"))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    rank, local = dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local)
    return Dist(rank, world, torch.device(f"cuda:{local}" if use_cuda else "cpu"))


def stage_depths(stages: list[StageConfig]) -> list[int]:
    depths, total = [], 0
    for stage in stages:
        total += stage.add_blocks
        depths.append(total)
    return depths


def lr_at(step: int, steps: int, peak: float, warmup_frac: float, min_ratio: float) -> float:
    warmup = max(1, int(warmup_frac * steps))
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


class Trainer:
    def __init__(self, cfg: RunConfig, run: Path, inputs: RunInputs, dist_info: Dist):
        from growlm.data.loader import TokenWindows

        self.cfg, self.run, self.inputs, self.d = cfg, run, inputs, dist_info
        t = cfg.train
        per_rank = t.batch_size // (dist_info.world * t.grad_accum)
        if per_rank * dist_info.world * t.grad_accum != t.batch_size:
            raise GrowlmError(f"train.batch_size={t.batch_size} must be divisible by train.grad_accum={t.grad_accum} "
                              f"x {dist_info.world} processes")
        self.train_data = TokenWindows(inputs.shards, "train", cfg.model.context, per_rank, t.seed,
                                       rank=dist_info.rank, world_size=dist_info.world)
        self.val_data = TokenWindows(inputs.shards, "val", cfg.model.context, per_rank, t.seed)
        if self.train_data.tokenizer_sha256 != inputs.tokenizer.sha256:
            raise GrowlmError(f"shards {inputs.shards} were made with another tokenizer; prepare them again")
        if dist_info.device.type == "cpu":
            torch.set_flush_denormal(True)
        self.depths = stage_depths(cfg.growth.stages)
        self.bf16 = t.precision == "bf16"
        self.tokens_per_step = t.batch_size * cfg.model.context
        self.peak_flops = measured_peak_flops(dist_info.device, self.bf16)
        self.budget = int(cfg.growth.budget_factor * self._stage1_trainable())
        self.writer = None

    # ---- plan -------------------------------------------------------------------------------------------
    def _train_embedding(self, stage: StageConfig) -> bool:
        return stage.train_embedding if stage.train_embedding is not None else self.cfg.substrate.kind == "trainable"

    def _stage1_trainable(self) -> int:
        with torch.device("meta"):
            from transformers import LlamaForCausalLM

            model = LlamaForCausalLM(llama_config(self.cfg.model, self.depths[0]))
        set_trainable(model, 0, self._train_embedding(self.cfg.growth.stages[0]))
        return count_params(model, trainable_only=True)

    def steps_in(self, k: int) -> int:
        return max(1, math.ceil(self.cfg.growth.stages[k].tokens / self.tokens_per_step))

    def setup_stage(self, model, k: int):
        """Freeze/unfreeze for stage k, add LoRA if the stage asks; returns (train model, no-grad blocks, rank)."""
        stage = self.cfg.growth.stages[k]
        n_frozen = 0 if stage.train_old_blocks else (self.depths[k - 1] if k else 0)
        train_emb = self._train_embedding(stage)
        set_trainable(model, n_frozen, train_emb)
        rank = 0
        if stage.lora and n_frozen:
            per_rank = lora_params_per_rank(model, range(n_frozen))
            rank = solve_lora_rank(self.budget, count_params(model, True), per_rank, self.cfg.growth.lora_max_rank, k)
            model = add_lora(model, n_frozen, rank, self.cfg.growth.lora_alpha_ratio)
        no_grad_blocks = 0 if (rank or train_emb) else n_frozen
        return model, no_grad_blocks, rank

    def new_model(self, depth: int):
        embedding = None
        if self.inputs.substrate is not None:
            from growlm.substrate import lift

            embedding = lift(self.inputs.substrate.matrix, self.cfg.model.d_model)
        return build_model(self.cfg.model, depth, embedding).to(self.d.device)

    def optimizer(self, model, k: int) -> torch.optim.AdamW:
        t = self.cfg.train
        params = [p for p in model.parameters() if p.requires_grad]
        groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": t.weight_decay},
                  {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=self.stage_lr(k), betas=(t.beta1, t.beta2), foreach=True)

    def stage_lr(self, k: int) -> float:
        return self.cfg.growth.stages[k].lr or self.cfg.train.lr

    # ---- logging ----------------------------------------------------------------------------------------
    def log(self, row: dict) -> None:
        if not self.d.main:
            return
        with open(self.run / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.run / "tensorboard"))
        for key in ("loss", "val_loss", "lr", "tokens_per_s", "mfu"):
            if row.get(key) is not None:
                self.writer.add_scalar(f"{row['kind']}/{key}", row[key], row["step"])

    def truncate_metrics(self, after_step: int) -> None:
        path = self.run / "metrics.jsonl"
        if self.d.main and path.is_file():
            rows = [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= after_step]
            path.write_text("".join(r + "\n" for r in rows))

    # ---- loop -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def val_loss(self, loss_model: LossModel) -> float:
        losses = [loss_model(b.to(self.d.device)).item() for b in self.val_data.val_batches(self.cfg.train.eval_batches)]
        return sum(losses) / len(losses)

    def _reduce(self, value: torch.Tensor) -> float:
        if self.d.world > 1:
            value = value.detach().clone()
            dist.all_reduce(value)
            value /= self.d.world
        return float(value)

    def fit(self, resume: bool) -> list[dict]:
        cfg, t = self.cfg, self.cfg.train
        torch.manual_seed(t.seed)
        model = self.new_model(0)
        start_k, start_step, counters = 0, 0, {"global_step": 0, "tokens": 0, "flops": 0.0}
        last = ckpt.latest_checkpoint(self.run) if resume else None
        resumed_mid_stage = None
        if resume and last is None:
            self.truncate_metrics(-1)  # killed before its first checkpoint: start over
        if last is not None:
            state = ckpt.read_state(last)
            counters = {k: state[k] for k in counters}
            self.truncate_metrics(state["global_step"])
            if state["stage_complete"]:
                start_k = state["stage"] + 1
                model = self.new_model(self.depths[state["stage"]])
                ckpt.load_model_state(last, model)
            else:
                start_k, start_step = state["stage"], state["stage_step"]
                model = self.new_model(self.depths[start_k])
                resumed_mid_stage = last
            ckpt.restore_rng(last)
        summaries = self._read_summaries()[:start_k]
        for k in range(start_k, len(cfg.growth.stages)):
            if resumed_mid_stage is None:
                grow(model, cfg.growth.stages[k].add_blocks, cfg.growth.init)
            summary, model = self.run_stage(model, k, start_step if k == start_k else 0, counters, resumed_mid_stage)
            resumed_mid_stage = None
            summaries.append(summary)
            if self.d.main:
                atomic_write_json(self.run / "stages" / "summary.json", summaries)
        if self.writer is not None:
            self.writer.close()
        return summaries

    def _read_summaries(self) -> list[dict]:
        path = self.run / "stages" / "summary.json"
        return json.loads(path.read_text()) if path.is_file() else []

    def run_stage(self, model, k: int, start_step: int, counters: dict, resume_from: Path | None):
        cfg, t, stage = self.cfg, self.cfg.train, self.cfg.growth.stages[k]
        n_stages, depth = len(cfg.growth.stages), self.depths[k]
        train_model, no_grad_blocks, rank = self.setup_stage(model, k)
        opt = self.optimizer(train_model, k)
        if resume_from is not None:
            ckpt.load_model_state(resume_from, train_model)
            ckpt.load_optimizer_state(resume_from, opt)
        loss_model = LossModel(train_model, no_grad_blocks, t.ce_chunk, self.bf16, t.compile)
        wrapped = loss_model
        if self.d.world > 1:
            wrapped = torch.nn.parallel.DistributedDataParallel(loss_model)
        frozen_before = frozen_tensor_hashes(train_model)
        llama = base_model(train_model)
        fpt = flops_per_token(llama, cfg.model.context)
        trainable, total = count_params(train_model, True), count_params(llama)
        steps = self.steps_in(k)
        self.log({"kind": "stage_start", "stage": k + 1, "depth": depth, "step": counters["global_step"],
                  "trainable_params": trainable, "total_params": total, "lora_rank": rank, "budget": self.budget,
                  "flops_per_token": fpt.total, "steps": steps})
        if self.d.main:
            tqdm.write(f"stage {k + 1}/{n_stages}: depth {depth}, {stage.add_blocks} new block(s), "
                       f"trainable {trainable:,} of {total:,} params" + (f", LoRA rank {rank}" if rank else ""))
        at_start = self._val_at_start(loss_model, k, depth, counters, start_step)
        bar = tqdm(total=steps, initial=start_step, desc=f"stage {k + 1}/{n_stages} depth {depth}",
                   disable=not self.d.main, dynamic_ncols=True)
        tick, wall_start = time.perf_counter(), time.perf_counter()
        params = [p for p in train_model.parameters() if p.requires_grad]
        for s in range(start_step, steps):
            lr = lr_at(s, steps, self.stage_lr(k), t.warmup_frac, t.min_lr_ratio)
            for group in opt.param_groups:
                group["lr"] = lr
            loss_sum = torch.zeros((), device=self.d.device)
            for micro in range(t.grad_accum):
                batch = self.train_data.batch(counters["global_step"] * t.grad_accum + micro).to(self.d.device)
                sync_ok = micro == t.grad_accum - 1 or self.d.world == 1
                ctx = wrapped.no_sync() if not sync_ok else contextlib.nullcontext()
                with ctx:
                    loss = wrapped(batch) / t.grad_accum
                    loss.backward()
                loss_sum += loss.detach()
            loss_value = self._reduce(loss_sum)
            if not math.isfinite(loss_value):
                last = ckpt.latest_checkpoint(self.run)
                raise TrainingDiverged(f"loss became {loss_value} at stage {k + 1} step {s} (global step "
                                       f"{counters['global_step']}); kept the last good checkpoint "
                                       f"{last or '(none yet)'}; lower train.lr or use train.precision = 'fp32'")
            if t.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, t.grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
            counters["global_step"] += 1
            counters["tokens"] += self.tokens_per_step
            counters["flops"] += fpt.total * self.tokens_per_step
            bar.update(1)
            done = s + 1
            if done % t.log_every == 0 or done == steps:
                now = time.perf_counter()
                n = (done - start_step) % t.log_every or t.log_every
                tps = n * self.tokens_per_step / (now - tick)
                tick = now
                mfu = tps * fpt.total / self.peak_flops
                bar.set_postfix(loss=f"{loss_value:.3f}", tok_s=f"{tps:,.0f}", mfu=f"{mfu:.1%}")
                self.log({"kind": "train", "stage": k + 1, "depth": depth, "step": counters["global_step"],
                          "stage_step": done, "loss": loss_value, "lr": lr, "tokens": counters["tokens"],
                          "flops": counters["flops"], "tokens_per_s": tps, "mfu": mfu,
                          "wall": now - wall_start})
            if done % t.eval_every == 0 and done != steps:
                self._validate(loss_model, k, depth, counters)
            if done % t.checkpoint_every == 0 and done != steps:
                self._checkpoint(train_model, opt, k, done, counters, complete=False)
        bar.close()
        val = self._validate(loss_model, k, depth, counters)
        if frozen_tensor_hashes(train_model) != frozen_before:
            raise GrowlmError(f"stage {k + 1}: a frozen tensor changed during training; this is a bug, please report it")
        model = merge_lora(train_model) if rank else train_model
        self._checkpoint(model, None, k, steps, counters, complete=True)
        summary = {"stage": k + 1, "depth": depth, "add_blocks": stage.add_blocks, "lora_rank": rank,
                   "trainable_params": trainable, "total_params": total, "tokens": counters["tokens"],
                   "flops": counters["flops"], "val_loss_at_start": at_start, "val_loss": val,
                   "wall_s": time.perf_counter() - wall_start,
                   "frozen_tensors": len(frozen_before)}
        self._export(model, k, summary, frozen_before)
        self.log({"kind": "stage_end", "step": counters["global_step"], **summary})
        return summary, model

    def _validate(self, loss_model: LossModel, k: int, depth: int, counters: dict, at_start: bool = False) -> float:
        val = self.val_loss(loss_model)
        self.log({"kind": "val", "stage": k + 1, "depth": depth, "step": counters["global_step"],
                  "tokens": counters["tokens"], "flops": counters["flops"], "val_loss": val,
                  **({"at_stage_start": True} if at_start else {})})
        return val

    def _val_at_start(self, loss_model: LossModel, k: int, depth: int, counters: dict, start_step: int):
        """Validation loss of the grown model before the stage trains: the height of the paper's growth spike.

        Stage 1 starts from nothing, so it has none; a resumed stage reads the value it logged before the stop.
        """
        if k == 0:
            return None
        if start_step == 0:
            return self._validate(loss_model, k, depth, counters, at_start=True)
        from growlm.analysis.rundir import read_metrics

        rows = read_metrics(self.run / "metrics.jsonl")
        return next((r["val_loss"] for r in rows if r.get("at_stage_start") and r["stage"] == k + 1), None)

    def _checkpoint(self, model, opt, k: int, stage_step: int, counters: dict, complete: bool) -> None:
        if self.d.main:
            state = {"stage": k, "stage_step": stage_step, "stage_complete": complete, **counters}
            ckpt.save_checkpoint(self.run, model, opt, state, self.cfg.train.keep_checkpoints)
        if self.d.world > 1:
            dist.barrier()

    def _export(self, model, k: int, summary: dict, frozen: dict) -> None:
        if not self.d.main:
            return
        sub = self.inputs.substrate
        meta = {"substrate": {"kind": self.cfg.substrate.kind, "sha256": sub.sha256 if sub is not None else None},
                "stage": k + 1, "run": self.cfg.name, "training": summary}
        out = self.run / "stages" / str(k + 1)
        export_model(model, self.inputs.tokenizer, out / "model", meta)
        atomic_write_json(out / "frozen_hashes.json", frozen)
