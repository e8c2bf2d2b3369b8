"""growlm analyze tsne|substrate: what the representations of a model or a substrate look like, in numbers."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help="t-SNE of word groups by layer; substrate neighbours and histograms")
    verbs = p.add_subparsers(dest="verb", required=True)

    t = verbs.add_parser("tsne", help="t-SNE and group-separation scores of the substrate and every layer")
    t.add_argument("model", help="exported model folder (e.g. RUN/stages/<k>/model)")
    t.add_argument(
        "--groups",
        dest="groups_path",
        help="word groups JSON (default: the packaged numbers/professions/animals/colours/"
        "cities/emotions in English, Russian and Chinese)",
    )
    t.add_argument("--out", help="output folder (default: MODEL-tsne next to the model)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--knn", dest="knn_k", type=int, default=5, help="neighbours for the kNN group purity (default 5)")
    t.add_argument("--perplexity", type=float, help="t-SNE perplexity (default min(30, (words - 1) / 3))")
    t.add_argument("--force", action="store_true", help="replace an existing output folder")
    t.set_defaults(func=_tsne)

    s = verbs.add_parser("substrate", help="nearest neighbours of sample tokens, norm and cosine histograms")
    s.add_argument("dir", help="substrate folder (substrate.safetensors + manifest.json)")
    s.add_argument("--tokenizer", help="tokenizer folder, to name n-gram ids (default: the built-in one)")
    s.add_argument("--tokens", nargs="+", metavar="TOKEN", help="sample tokens (default: a fixed mix of scripts)")
    s.add_argument("-k", type=int, default=8, help="neighbours per token (default 8)")
    s.add_argument("--out", help="output folder (default: DIR-analysis next to the substrate)")
    s.add_argument("--force", action="store_true", help="replace an existing output folder")
    s.set_defaults(func=_substrate)


def _default_out(path: str, suffix: str) -> Path:
    path = Path(path).resolve()
    return path.with_name(f"{path.name}-{suffix}")


def written(out: Path) -> str:
    return ", ".join(sorted(p.name for p in Path(out).iterdir() if not p.name.startswith(".")))


def _tsne(args) -> None:
    from growlm.analysis.tsne import analyze_tsne, write_tsne
    from growlm.io.outputs import check_not_input, check_output

    out = args.out or _default_out(args.model, "tsne")
    check_not_input(out, [args.model, args.groups_path])
    out = check_output(out, args.force)
    result = analyze_tsne(args.model, args.groups_path, seed=args.seed, knn_k=args.knn_k, perplexity=args.perplexity)
    write_tsne(result, out, args.force)
    Console().print(result.table().to_rich())
    print(f"wrote {out}: {written(out)}")


def _substrate(args) -> None:
    from growlm.analysis.substrate import analyze_substrate, write_substrate_report
    from growlm.io.outputs import check_not_input, check_output
    from growlm.tokenizer import default_tokenizer, load_tokenizer

    out = args.out or _default_out(args.dir, "analysis")
    check_not_input(out, [args.dir, args.tokenizer])
    out = check_output(out, args.force)
    tokenizer = load_tokenizer(args.tokenizer) if args.tokenizer else default_tokenizer()
    report = analyze_substrate(args.dir, tokenizer, args.tokens, k=args.k)
    write_substrate_report(report, out, args.force)
    console = Console()
    for table in report.tables():
        console.print(table.to_rich())
    print(f"wrote {out}: {written(out)}")
