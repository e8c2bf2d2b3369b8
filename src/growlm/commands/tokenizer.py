"""growlm tokenizer build|encode|decode|report."""

from __future__ import annotations

import argparse
import itertools
import json
from collections import Counter
from pathlib import Path

from growlm.data.corpus import corpus_texts
from growlm.errors import GrowlmError
from growlm.io.outputs import atomic_dir, check_not_input, check_replaceable
from growlm.tokenizer import build_tokenizer, default_tokenizer, load_tokenizer


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tokenizer", help="build and try bvv-layout tokenizers")
    verbs = p.add_subparsers(dest="verb", required=True)

    b = verbs.add_parser("build", help="mine 2-/3-grams per script from a corpus and write a tokenizer folder")
    b.add_argument(
        "--corpus",
        nargs="*",
        default=[],
        metavar="SOURCE",
        help="text files, folders or named data sources; none = the built-in default (no n-grams)",
    )
    b.add_argument(
        "--ngrams",
        dest="ngrams_per_script",
        type=int,
        default=338,
        help="n-grams per length per script (default 338, as the paper)",
    )
    b.add_argument("--out", required=True)
    b.add_argument("--force", action="store_true")
    b.set_defaults(func=_build)

    e = verbs.add_parser("encode", help="print the ids of a text")
    e.add_argument("text")
    e.add_argument("--tokenizer", help="tokenizer folder (default: the built-in one)")
    e.set_defaults(func=_encode)

    d = verbs.add_parser("decode", help="print the text of ids")
    d.add_argument("ids", nargs="+", type=int)
    d.add_argument("--tokenizer")
    d.set_defaults(func=_decode)

    r = verbs.add_parser("report", help="characters per token for each corpus (one per language)")
    r.add_argument("--corpus", nargs="+", required=True, metavar="SOURCE")
    r.add_argument("--tokenizer")
    r.set_defaults(func=_report)


def _load(path):
    return load_tokenizer(path) if path else default_tokenizer()


def _build(args) -> None:
    if args.ngrams_per_script < 0:
        raise GrowlmError(f"--ngrams {args.ngrams_per_script} must be 0 or more (n-grams per length per script)")
    check_not_input(args.out, [c for c in args.corpus if Path(c).exists()])
    check_replaceable(args.out, args.force)  # before the corpus is mined
    texts = itertools.chain.from_iterable(corpus_texts(s) for s in args.corpus)
    tok = build_tokenizer(texts, args.ngrams_per_script) if args.corpus else default_tokenizer()
    with atomic_dir(args.out, args.force, kind="tokenizer folder") as tmp:
        tok.save(tmp)
    by_script = Counter(g.script for g in tok.ngram_info)
    print(
        f"tokenizer {args.out}: {len(tok.ngrams)} n-grams ({dict(by_script.most_common())}), sha256 {tok.sha256[:16]}"
    )


def _encode(args) -> None:
    print(json.dumps(_load(args.tokenizer).encode(args.text)))


def _decode(args) -> None:
    tok = _load(args.tokenizer)
    bad = [i for i in args.ids if not 0 <= i < tok.vocab_size]
    if bad:
        raise GrowlmError(
            f"id {bad[0]} is outside the vocabulary (0 to {tok.vocab_size - 1}); give token ids "
            "as `growlm tokenizer encode` prints them"
        )
    print(tok.decode(args.ids))


def _report(args) -> None:
    tok = _load(args.tokenizer)
    print(f"{'corpus':<28}{'chars':>12}{'tokens':>12}{'chars/token':>13}")
    for source in args.corpus:
        chars = tokens = 0
        for text in corpus_texts(source):
            chars += len(text)
            tokens += len(tok.encode(text))
        print(f"{source[-28:]:<28}{chars:>12}{tokens:>12}{chars / max(tokens, 1):>13.3f}")
