"""growlm grow CONFIG [--set k=v ...] [--out RUN] [--resume] [--force]; growlm export CHECKPOINT --out DIR."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from growlm.errors import GrowlmError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("grow", help="train a model by a growth plan (monolithic baselines are one-stage plans)")
    p.add_argument("config", nargs="?", help="TOML config (configs/*.toml); optional with --resume")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.lr=1e-3 (repeatable)")
    p.add_argument("--out", help="run directory (default runs/<name>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    p.add_argument("--force", action="store_true", help="replace an existing run directory")
    p.set_defaults(func=_grow)

    e = sub.add_parser("export", help="write a checkpoint as a plain Hugging Face model folder")
    e.add_argument("checkpoint", help="RUN/checkpoints/step-... folder")
    e.add_argument("--out", required=True)
    e.add_argument("--force", action="store_true")
    e.set_defaults(func=_export)


def _grow(args) -> int:
    from growlm.config import load_config, to_toml
    from growlm.run import check_resume, resolve_inputs, write_run_header
    from growlm.train import Trainer, init_distributed

    if args.resume:
        if not args.out:
            raise GrowlmError("--resume needs --out RUN (the run directory to continue)")
        run = Path(args.out)
        resolved = run / "config.resolved.toml"
        if not resolved.is_file():
            raise GrowlmError(f"cannot resume {run}: no config.resolved.toml there; start it without --resume")
        cfg = load_config(resolved, args.overrides)
        if args.config and to_toml(load_config(args.config, args.overrides)) != resolved.read_text():
            raise GrowlmError(f"{args.config} differs from the config of {run}; resume without a config, or "
                              "start a new run")
    else:
        if not args.config:
            raise GrowlmError("give a config, e.g. `growlm grow configs/demo.toml`")
        cfg = load_config(args.config, args.overrides)
        run = Path(args.out or Path("runs") / cfg.name)
    dist_info = init_distributed(cfg.train.device)
    if not args.resume and dist_info.main:
        if run.exists() and any(run.iterdir()):
            if not args.force:
                raise GrowlmError(f"run directory {run} exists; pass --force to replace it, --resume to continue "
                                  "it, or choose another --out")
            shutil.rmtree(run)
        run.mkdir(parents=True, exist_ok=True)
    _barrier(dist_info)
    if cfg.train.threads:
        import torch

        torch.set_num_threads(cfg.train.threads)
    inputs = resolve_inputs(cfg, run) if dist_info.main else None
    _barrier(dist_info)
    if inputs is None:
        inputs = resolve_inputs(cfg, run)
    if args.resume:
        check_resume(run, inputs)
    elif dist_info.main:
        write_run_header(run, cfg, inputs)
    summaries = Trainer(cfg, run, inputs, dist_info).fit(resume=args.resume)
    if dist_info.main:
        _print_stages(summaries)
        print(f"run {run}: exported models in {run / 'stages'}/<k>/model")
    return 0


def _barrier(dist_info) -> None:
    if dist_info.world > 1:
        import torch.distributed as dist

        dist.barrier()


def _export(args) -> int:
    from growlm.export import export_checkpoint

    out = export_checkpoint(Path(args.checkpoint), Path(args.out), args.force)
    print(f"exported {args.checkpoint} to {out}")
    return 0


def _print_stages(summaries: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="growth run by stage")
    for col in ("stage", "depth", "LoRA rank", "trainable", "total", "tokens", "TFLOPs", "val loss", "wall s"):
        table.add_column(col, justify="right")
    for s in summaries:
        table.add_row(str(s["stage"]), str(s["depth"]), str(s["lora_rank"] or "-"),
                      f"{s['trainable_params'] / 1e6:.2f}M", f"{s['total_params'] / 1e6:.2f}M",
                      f"{s['tokens'] / 1e3:,.0f}k", f"{s['flops'] / 1e12:,.1f}", f"{s['val_loss']:.4f}",
                      f"{s['wall_s']:.0f}")
    Console(width=max(100, Console().width)).print(table)
