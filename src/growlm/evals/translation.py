"""Translation en->ru, ru->en, en->zh, zh->en on held-out Debian documentation, scored with sacreBLEU.

Pairs: paragraphs of LibreOffice help pages (en-US / ru / zh-CN, aligned by their id attribute) and of the Debian
Administrator's Handbook (en-US / ru-RU / zh-CN, aligned by position where a page has the same number of
paragraphs in both languages), taken only from the pages growlm.data.heldout holds out of every training
source. Kept: single-line pairs whose English side has >= 4 words and whose other side is in the target script,
both sides at most 240 characters, no exact duplicates. Both manuals repeat paragraphs across pages, so a pair is
also dropped when either side appears as a paragraph of the training pages (the libreoffice-help-* and
debian-handbook-* sources) or shares a 13-word n-gram with them (growlm.data.decontaminate): about 1,430 en-ru and
1,550 en-zh pairs remain. The order is a fixed shuffle; the first five pairs are the few-shot pool, the next 500
the test set of each direction. A local Helsinki-NLP/opus-100 file (rows {"translation": {"en": ..,
"ru": ..}}) replaces them with --task-file translation=FILE.

Harness: "{Source language}: {text}\\n{Target language}:", greedy until newline (cap 320 tokens,
--max-new-tokens), corpus BLEU (tokenizer "zh" for Chinese targets, "13a" otherwise) and chrF; --shots K puts
K pool pairs before the prompt. Paper protocol: "Translate from English to Russian:\\n{text}\\nAnswer:", 128
pairs per direction, sampled, mean sentence BLEU of uppercased text (see paper_protocol.py).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from sacrebleu.metrics import BLEU, CHRF

from growlm.data.clean import html_paragraphs
from growlm.data.decontaminate import ItemIndex
from growlm.data.heldout import is_heldout_page, page_relpath
from growlm.data.sources import DEBIAN_HANDBOOK, LIBREOFFICE_HELP, SOURCES, read_source
from growlm.errors import GrowlmError
from growlm.evals.decoding import generate_items
from growlm.evals.paper_protocol import length_caps, paper_score, run_spread, sampled_runs
from growlm.evals.records import SampledTranslationItem, Score, TaskResult, TranslationItem
from growlm.evals.settings import EvalContext, EvalSettings
from growlm.evals.stats import bootstrap_ci
from growlm.evals.taskfiles import get, read_rows

LANGUAGES = {"en": "English", "ru": "Russian", "zh": "Chinese"}
LIBREOFFICE_FOLDERS = {"en": "en-US", "ru": "ru", "zh": "zh-CN"}
HANDBOOK_FOLDERS = {"en": "en-US", "ru": "ru-RU", "zh": "zh-CN"}
DIRECTIONS = ("en-ru", "ru-en", "en-zh", "zh-en")
SCRIPTS = {"ru": re.compile("[\u0400-\u04ff]"), "zh": re.compile("[\u4e00-\u9fff]")}
MIN_ENGLISH_WORDS = 4
MAX_CHARS = 240
SHOT_POOL = 5
TEST_PAIRS = 500
ORDER_SEED = 1234  # fixes the item order (hence --limit samples), whatever --seed says
DEFAULT_CAP = 320
PAPER_PAIRS = 128


@dataclass(frozen=True)
class Pair:
    id: str
    text: dict[str, str]  # language code -> paragraph


def _keep(en: str, other: str, lang: str) -> bool:
    return (
        len(en.split()) >= MIN_ENGLISH_WORDS
        and bool(SCRIPTS[lang].search(other))
        and en != other
        and "\n" not in en + other
        and max(len(en), len(other)) <= MAX_CHARS
    )


def _unique_ids(paragraphs: list[tuple[str | None, str]]) -> dict[str, str]:
    ids = [pid for pid, _ in paragraphs if pid]
    return {pid: text for pid, text in paragraphs if pid and ids.count(pid) == 1}


def _heldout_pages(pages: Iterable[Path], en_root: Path, other_root: Path) -> Iterator[tuple[Path, str, Path]]:
    """(English page, its relative path, the translated page) of the held-out pages that have a translation."""
    for page in sorted(pages):
        rel = page_relpath(page, en_root)
        if is_heldout_page(rel) and (other_root / rel).is_file():
            yield page, rel, other_root / rel


def libreoffice_pairs(lang: str) -> list[Pair]:
    en_root, other_root = LIBREOFFICE_HELP / "en-US", LIBREOFFICE_HELP / LIBREOFFICE_FOLDERS[lang]
    pairs = []
    for page, rel, translated in _heldout_pages((en_root / "text").rglob("*.html"), en_root, other_root):
        other = _unique_ids(html_paragraphs(translated))
        for pid, en in _unique_ids(html_paragraphs(page)).items():
            if pid in other and _keep(en, other[pid], lang):
                pairs.append(Pair(f"libreoffice:{rel}#{pid}", {"en": en, lang: other[pid]}))
    return pairs


def handbook_pairs(lang: str) -> list[Pair]:
    en_root, other_root = DEBIAN_HANDBOOK / "en-US", DEBIAN_HANDBOOK / HANDBOOK_FOLDERS[lang]
    pairs = []
    for page, rel, translated in _heldout_pages(en_root.glob("*.html"), en_root, other_root):
        en_pars, other_pars = html_paragraphs(page), html_paragraphs(translated)
        if len(en_pars) != len(other_pars):
            continue
        for k, ((_, en), (_, other)) in enumerate(zip(en_pars, other_pars)):
            if _keep(en, other, lang):
                pairs.append(Pair(f"debian-handbook:{rel}#{k}", {"en": en, lang: other}))
    return pairs


def training_documents(lang: str) -> list[str]:
    """The documentation text training sees: the non-held-out pages, in English and in `lang`."""
    sources = [
        SOURCES[f"{corpus}-{code}"] for corpus in ("libreoffice-help", "debian-handbook") for code in ("en", lang)
    ]
    return [d.text for s in sources for d in read_source(s, s.files()).documents]


def decontaminated(pairs: list[Pair], documents: list[str]) -> list[Pair]:
    """Pairs none of whose sides is a training paragraph or shares a 13-word n-gram with training text."""
    paragraphs = {line.strip() for d in documents for line in d.split("\n")}
    pairs = [p for p in pairs if not any(t in paragraphs for t in p.text.values())]
    sides = [(k, t) for k, p in enumerate(pairs) for t in p.text.values()]
    index = ItemIndex([t for _, t in sides], exact=False)  # the held-out pair set is defined by 13-grams alone
    seen = {sides[i][0] for d in documents for i in index.match(d)[0]}
    return [p for k, p in enumerate(pairs) if k not in seen]


def _dedup_shuffled(pairs: list[Pair]) -> list[Pair]:
    seen, unique = set(), []
    for p in pairs:
        key = tuple(sorted(p.text.items()))
        if key not in seen:
            seen.add(key)
            unique.append(p)
    random.Random(ORDER_SEED).shuffle(unique)
    return unique


@lru_cache(maxsize=4)
def documentation_pairs(lang: str) -> tuple[Pair, ...]:
    if not (LIBREOFFICE_HELP / LIBREOFFICE_FOLDERS[lang]).is_dir() or not (DEBIAN_HANDBOOK / "en-US").is_dir():
        raise GrowlmError(
            f"translation pairs need the Debian documentation; run `growlm data fetch "
            f"libreoffice-help-en libreoffice-help-{lang} debian-handbook-en debian-handbook-{lang}`"
        )
    pairs = decontaminated(libreoffice_pairs(lang) + handbook_pairs(lang), training_documents(lang))
    return tuple(_dedup_shuffled(pairs))


def file_pairs(path: Path) -> tuple[list[Pair], tuple[str, ...]]:
    """Pairs of a local opus-100 style file and the directions it supports."""
    pairs = []
    for row in read_rows(path):
        text = get(row, "translation", dict)
        if not all(isinstance(v, str) for v in text.values()):
            raise GrowlmError(f"{row[0]}: field 'translation' must map language codes to strings")
        pairs.append(Pair(row[0], dict(text)))
    langs = sorted(pairs[0].text) if pairs else []
    if len(langs) != 2 or any(sorted(p.text) != langs for p in pairs):
        raise GrowlmError(f"{path}: every row needs the same two languages under 'translation', e.g. en and ru")
    return _dedup_shuffled(pairs), (f"{langs[0]}-{langs[1]}", f"{langs[1]}-{langs[0]}")


def direction_pairs(direction: str, settings: EvalSettings) -> tuple[list[Pair], list[Pair]]:
    """(few-shot pool, test pairs) for one direction."""
    src, tgt = direction.split("-")
    if "translation" in settings.task_files:
        pairs, _ = file_pairs(settings.task_files["translation"])
    else:
        pairs = list(documentation_pairs(tgt if src == "en" else src))
    return pairs[:SHOT_POOL], pairs[SHOT_POOL : SHOT_POOL + TEST_PAIRS]


def directions(split: str, settings: EvalSettings) -> tuple[str, ...]:
    if "translation" in settings.task_files:
        offered = file_pairs(settings.task_files["translation"])[1]
    else:
        offered = DIRECTIONS
    if split == "all":
        return offered
    if split not in offered:
        raise GrowlmError(f"translation direction {split!r} is not available; use one of {', '.join(offered)}")
    return (split,)


def _language(code: str) -> str:
    return LANGUAGES.get(code, code)


def harness_prompt(pair: Pair, shots: list[Pair], src: str, tgt: str) -> str:
    examples = "".join(f"{_language(src)}: {s.text[src]}\n{_language(tgt)}: {s.text[tgt]}\n\n" for s in shots)
    return f"{examples}{_language(src)}: {pair.text[src]}\n{_language(tgt)}:"


def corpus_scores(
    task: str,
    hypotheses: list[str],
    references: list[str],
    tgt: str,
    split: str,
    shots: int,
    protocol: str,
    settings: EvalSettings,
) -> tuple[list[Score], list[list[float]], list[list[float]]]:
    """Corpus BLEU and chrF with bootstrap intervals; also each item's sufficient statistics."""
    metrics = {"bleu": BLEU(tokenize="zh" if tgt == "zh" else "13a"), "chrf": CHRF()}
    scores, stats = [], {}
    for name, metric in metrics.items():
        stats[name] = metric._extract_corpus_statistics(hypotheses, [references])
        value = metric.corpus_score(hypotheses, [references]).score
        ci = bootstrap_ci(
            np.array(stats[name]),
            lambda s, m=metric: m._compute_score_from_stats(list(s)).score,
            settings.resamples,
            settings.seed,
        )
        scores.append(Score(task, name, value, ci, len(hypotheses), None, split, shots, protocol))
    return scores, stats["bleu"], stats["chrf"]


def run(model, tokenizer, ctx: EvalContext) -> TaskResult:
    split, settings = ctx.split, ctx.settings
    cap = settings.max_new_tokens or DEFAULT_CAP
    results, records = [], []
    for direction in directions(split, settings):
        src, tgt = direction.split("-")
        pool, pairs = direction_pairs(direction, settings)
        if settings.shots > len(pool):
            raise GrowlmError(f"translation has {len(pool)} few-shot examples; use `shots` 0..{len(pool)}")
        pairs = settings.first(pairs)
        prompts = [harness_prompt(p, pool[: settings.shots], src, tgt) for p in pairs]
        outputs = generate_items(f"translation {direction}", model, tokenizer, prompts, cap, settings)
        hypotheses = [o.text.strip() for o in outputs]
        references = [p.text[tgt] for p in pairs]
        scores, bleu_stats, chrf_stats = corpus_scores(
            f"translation/{direction}", hypotheses, references, tgt, direction, settings.shots, "harness", settings
        )
        cut = float(np.mean([o.truncated_tokens > 0 for o in outputs])) if outputs else 0.0
        results += [replace(s, truncated=cut) for s in scores]
        records += [
            TranslationItem(
                id=p.id,
                direction=direction,
                source=p.text[src],
                prompt=prompt,
                output=o.text,
                hypothesis=h,
                references=(r,),
                bleu_stats=tuple(b),
                chrf_stats=tuple(c),
                new_tokens=o.new_tokens,
                truncated_tokens=o.truncated_tokens,
            )
            for p, prompt, o, h, r, b, c in zip(pairs, prompts, outputs, hypotheses, references, bleu_stats, chrf_stats)
        ]
    info = {
        "source": settings.task_source("translation", "held-out LibreOffice help and Debian handbook pages"),
        "stop": "\\n",
        "max_new_tokens": cap,
        "decoding": "greedy",
        "bleu_tokenize": {"zh": "zh", "other": "13a"},
    }
    return TaskResult("translation", results, records, info)


def paper_prompt(text: str, src: str, tgt: str) -> str:
    return f"Translate from {_language(src)} to {_language(tgt)}:\n{text}\nAnswer:"


def run_paper(model, tokenizer, ctx: EvalContext) -> TaskResult:
    split, settings = ctx.split, ctx.settings
    results, records, spreads = [], [], {}
    for direction in directions(split, settings):
        src, tgt = direction.split("-")
        pairs = settings.first(direction_pairs(direction, settings)[1][:PAPER_PAIRS])
        prompts = [paper_prompt(p.text[src], src, tgt) for p in pairs]
        references = [p.text[tgt] for p in pairs]
        caps = length_caps(references, settings)
        runs = sampled_runs(f"translation {direction}", model, tokenizer, prompts, caps, settings)
        bleu = np.array(
            [
                [BLEU().corpus_score([run[i].text.strip().upper()], [[ref.upper()]]).score for run in runs]
                for i, ref in enumerate(references)
            ]
        ).reshape(len(pairs), len(runs))
        results.append(paper_score(f"translation/{direction}", "bleu", bleu, None, direction, settings))
        spreads[direction] = run_spread(bleu)
        records += [
            SampledTranslationItem(
                id=p.id,
                direction=direction,
                prompt=prompt,
                reference=ref,
                new_tokens=cap,
                outputs=tuple(run[i].text for run in runs),
                sentence_bleu=tuple(bleu[i].tolist()),
                score=float(bleu[i].mean()),
            )
            for i, (p, prompt, ref, cap) in enumerate(zip(pairs, prompts, references, caps))
        ]
    info = {
        "format": "Translate from {src} to {tgt}:\\n{text}\\nAnswer:",
        "scoring": "mean sentence BLEU (sacreBLEU defaults, uppercased)",
        "length_leak": settings.paper_length_leak,
        "protocol": "paper",
        "runs": settings.paper_runs,
        "spread": spreads,
    }
    return TaskResult("translation", results, records, info)
