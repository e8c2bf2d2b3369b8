"""growlm eval (one model) and growlm eval-run (every stage of a growth run, as a depth x task table)."""

from __future__ import annotations

import argparse
from pathlib import Path

from growlm.commands.args import add_device_option, positive_int
from growlm.errors import GrowlmError


class _TaskNames:
    """The task list of --tasks' help, read from the task registry when help is shown (importing the registry
    when the CLI starts would cost every verb about a second)."""

    def __str__(self) -> str:
        from growlm.evals.tasks import task_help

        return task_help()


def _task_file(text: str) -> tuple[str, Path]:
    task, sep, path = text.partition("=")
    if not sep or not task or not path:
        raise argparse.ArgumentTypeError(f"expected TASK=PATH (e.g. squad=dev-v2.0.jsonl), got {text!r}")
    return task, Path(path)


def _common(p: argparse.ArgumentParser) -> None:
    tasks = p.add_argument("--tasks", required=True, help="comma-separated NAME or NAME:SPLIT: %(task_names)s")
    tasks.task_names = _TaskNames()
    p.add_argument("--shots", type=int, default=0, help="examples before each question (default 0)")
    p.add_argument("--limit", type=positive_int, help="first N items of each task (MMLU: of each subject)")
    p.add_argument(
        "--protocol",
        choices=("harness", "paper"),
        default="harness",
        help="harness: log-likelihood scoring (default); paper: the author's generation-based scoring",
    )
    p.add_argument(
        "--paper-length-leak",
        action="store_true",
        help="paper protocol only: generate as many tokens as the gold answer has characters, as the "
        "author did (leaks the answer length)",
    )
    p.add_argument("--paper-runs", type=positive_int, default=10, help="paper protocol: sampled runs (default 10)")
    p.add_argument(
        "--task-file",
        dest="task_files",
        type=_task_file,
        action="append",
        default=[],
        metavar="TASK=PATH",
        help="use a local Hugging Face format file (.jsonl/.parquet/.arrow) for TASK (repeatable)",
    )
    p.add_argument("--shards", type=Path, help="perplexity: a shard folder (default: the model's run shards)")
    p.add_argument("--max-new-tokens", type=positive_int, help="generation cap for squad/translation")
    p.add_argument(
        "--batch-tokens", type=positive_int, default=2048, help="tokens per forward pass; bounds memory (default 2048)"
    )
    p.add_argument("--seed", type=int, default=1234, help="bootstrap and sampling seed (default 1234)")
    add_device_option(p)
    p.add_argument("--force", action="store_true", help="replace existing result files")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a model folder on benchmarks (table + JSON with per-item records)")
    p.add_argument("model", type=Path, metavar="MODEL", help="exported or composed model folder")
    p.add_argument("--out", type=Path, help="results JSON (default MODEL/eval-PROTOCOL.json)")
    _common(p)
    p.set_defaults(func=_run_eval)
    p = sub.add_parser("eval-run", help="evaluate every stage of a growth run: depth x task table, CSV, JSON, plot")
    p.add_argument("run", type=Path, metavar="RUN", help="growth run directory (with stages/<k>/model)")
    _common(p)
    p.set_defaults(func=_run_eval_run)


def _settings(args) -> dict:
    """The EvalSettings fields the arguments give (growlm.api.evaluate's `settings`)."""
    files = dict(args.task_files)
    if len(files) != len(args.task_files):
        raise GrowlmError("--task-file names the same task twice; give one file per task")
    return {
        "shots": args.shots,
        "limit": args.limit,
        "protocol": args.protocol,
        "batch_tokens": args.batch_tokens,
        "max_new_tokens": args.max_new_tokens,
        "seed": args.seed,
        "paper_runs": args.paper_runs,
        "paper_length_leak": args.paper_length_leak,
        "task_files": files,
        "shards": args.shards,
        "progress": not args.no_progress,
    }


def _run_eval(args) -> None:
    from growlm.api import evaluate
    from growlm.evals.results import render_table, results_path

    out = args.out or results_path(args.model, args.protocol)
    results = evaluate(args.model, args.tasks, args.device, out=out, force=args.force, **_settings(args))
    print(render_table(results.scores, results.protocol))
    print(f"wrote {out}")


def _run_eval_run(args) -> None:
    from growlm.api import evaluate_run
    from growlm.evals.by_depth import render_table

    done = evaluate_run(args.run, args.tasks, args.device, force=args.force, announce=print, **_settings(args))
    print(render_table(done.rows, done.protocol))
    print("wrote " + ", ".join(str(p) for p in done.paths.values()))
