"""growlm config explain [CONFIG] [--set KEY=VALUE ...]: every config key, its type, default, allowed values and
description (growlm.config.explain); with a config, its value there."""

from __future__ import annotations

import argparse

CAP = 28  # a column is as wide as its widest cell up to this; a wider cell pushes only its own row


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="what a run config (TOML) may set: every key, its default and allowed values")
    verbs = p.add_subparsers(dest="verb", required=True)

    e = verbs.add_parser(
        "explain",
        help="every key with its type, default, allowed values and description; with CONFIG, its value there",
    )
    e.add_argument("config", nargs="?", metavar="CONFIG", help="TOML config (configs/*.toml): show its values too")
    e.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, as for `growlm grow` (the value column shows the result)",
    )
    e.set_defaults(func=_explain)


def _explain(args) -> None:
    from growlm.config import explain, load_config

    given = args.config is not None or args.overrides
    rows = explain(load_config(args.config, args.overrides) if given else None)
    header = ["key", "type", "default", "allowed"] + (["value"] if given else []) + ["description"]
    cells = [[r.key, r.type, r.default, r.allowed] + ([r.value or ""] if given else []) + [r.description] for r in rows]
    widths = [min(CAP + 8 * (i == 0), max(len(c[i]) for c in [header, *cells])) for i in range(len(header) - 1)]
    print(_row(header, widths))
    for i, line in enumerate(cells):
        if i and line[0].split(".")[0] != cells[i - 1][0].split(".")[0]:
            print()  # a blank line between the tables ([substrate], [model], ...)
        print(_row(line, widths))


def _row(cells: list[str], widths: list[int]) -> str:
    """Cells left-aligned in columns of `widths`, two spaces apart; a cell wider than its column shifts the
    next ones only as far as it must."""
    out, stop = "", 0
    for cell, width in zip(cells, [*widths, 0]):
        out += " " * (max(2, stop - len(out)) if out else 0) + cell
        stop += width + 2
    return out
