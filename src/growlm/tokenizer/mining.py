"""Mining the most frequent 2- and 3-grams per script from a corpus.

n-grams are counted inside runs of letters of one script (see scripts.py), so they never span a space, a digit
or a change of script. Each script gets at most `per_script` n-grams of each length; when all scripts together
want more than the 7,936 n-gram slots, groups are filled round-robin by rank so no script crowds out another.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import zip_longest
from typing import Iterable

from growlm.tokenizer.layout import MAX_NGRAM_LEN, NGRAM_SLOTS
from growlm.tokenizer.scripts import script_runs

NGRAM_LENGTHS = (3, 2)  # longest first, as placed in the vocabulary


@dataclass(frozen=True)
class Ngram:
    text: str
    script: str
    count: int


def count_ngrams(texts: Iterable[str]) -> tuple[dict[tuple[str, int], Counter], Counter]:
    """Counts per (script, n), and characters per script (to order scripts by volume)."""
    counts: dict[tuple[str, int], Counter] = {}
    volume: Counter = Counter()
    for text in texts:
        for script, run in script_runs(text):
            volume[script] += len(run)
            for n in NGRAM_LENGTHS:
                if len(run) < n:
                    continue
                counter = counts.setdefault((script, n), Counter())
                counter.update(run[i : i + n] for i in range(len(run) - n + 1))
    return counts, volume


def select_ngrams(texts: Iterable[str], per_script: int, min_count: int = 2) -> list[Ngram]:
    """The n-grams to add, in vocabulary order: longest first, scripts by volume, then by frequency."""
    assert max(NGRAM_LENGTHS) <= MAX_NGRAM_LEN
    counts, volume = count_ngrams(texts)
    scripts = sorted(volume, key=lambda s: (-volume[s], s))
    groups: list[list[Ngram]] = []
    for n in NGRAM_LENGTHS:
        for script in scripts:
            ranked = sorted(counts.get((script, n), Counter()).items(), key=lambda kv: (-kv[1], kv[0]))
            groups.append([Ngram(t, script, c) for t, c in ranked[:per_script] if c >= min_count])
    chosen = _fill_round_robin(groups, len(NGRAM_SLOTS))
    return [g for group in groups for g in group if g.text in chosen]


def _fill_round_robin(groups: list[list[Ngram]], capacity: int) -> set[str]:
    chosen: set[str] = set()
    for rank_row in zip_longest(*groups):
        for ngram in rank_row:
            if ngram is not None and len(chosen) < capacity:
                chosen.add(ngram.text)
    return chosen
