"""`growlm substrate build|inspect`: make a frozen substrate folder, or report on one."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from growlm.io.outputs import check_not_input, check_output_file, check_replaceable

# growlm.substrate (torch) is imported by the verbs, not here: `growlm --help` and every other verb start fast.


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("substrate", help="build or inspect a frozen token substrate")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    build = verbs.add_parser("build", help="build a substrate folder (substrate.safetensors + manifest.json)")
    build.add_argument("--kind", required=True, help="visual, binary or random")
    build.add_argument("--cell", type=int, help="visual: glyph cell size 16, 32 or 64 (d = cell**2; default 16)")
    build.add_argument("--recipe", help="visual: default (growlm's, no collisions) or paper (the author's)")
    build.add_argument("--pca", action="store_true", help="visual: rotate onto all principal axes (as the paper)")
    build.add_argument("--dim", type=int, help="binary/random: width d (default 256; binary: a multiple of 16)")
    build.add_argument("--tokenizer", help="visual: tokenizer folder whose texts are drawn (default: built-in)")
    build.add_argument("--font", help="visual: Unifont .hex/.otf/.ttf (default /usr/share/unifont/unifont.hex)")
    build.add_argument("--seed", type=int, help="random: row seed; visual default recipe: tie-breaker seed (0)")
    build.add_argument("--out", required=True, help="output folder")
    build.add_argument("--force", action="store_true", help="replace an existing output folder")
    build.set_defaults(func=run_build)

    inspect = verbs.add_parser("inspect", help="report shape, norms, collisions and hashes of a substrate")
    inspect.add_argument("dir", help="substrate folder")
    inspect.add_argument("--png", help="also draw sample tokens next to their vectors into this PNG file")
    inspect.add_argument("--json", action="store_true", help="print the report as JSON")
    inspect.add_argument("--force", action="store_true", help="replace an existing --png file")
    inspect.set_defaults(func=run_inspect)


def run_build(args: argparse.Namespace) -> int:
    from growlm.substrate import build_substrate

    check_not_input(args.out, [args.tokenizer, args.font])
    check_replaceable(args.out, args.force)  # before the build, which can take a while
    sub = build_substrate(
        args.kind,
        cell=args.cell,
        recipe=args.recipe,
        dim=args.dim,
        tokenizer=args.tokenizer,
        font=args.font,
        seed=args.seed,
        pca=args.pca,
    )
    sub.save(args.out, force=args.force)
    print(f"wrote {args.out}: {sub.kind} substrate {sub.matrix.shape[0]} x {sub.dim}, sha256 {sub.sha256}")
    return 0


def run_inspect(args: argparse.Namespace) -> int:
    from growlm.substrate import load_substrate
    from growlm.substrate.inspect import format_report, report, write_png
    from growlm.substrate.store import MANIFEST_FILE, MATRIX_FILE

    if args.png:
        check_not_input(args.png, [Path(args.dir) / name for name in (MATRIX_FILE, MANIFEST_FILE)], "png")
        check_output_file(args.png, args.force, "png")
    sub = load_substrate(args.dir)
    rep = report(sub)
    print(json.dumps(rep, indent=2, sort_keys=True) if args.json else format_report(args.dir, rep))
    if args.png:
        write_png(sub, args.png)
        print(f"wrote {args.png}")
    return 0
