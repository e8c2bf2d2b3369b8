"""The author's evaluation (AVBochkov/PGT, _models_benchmarking.py), reproduced so both protocols can be run on
one model. Every score it produces is labelled "paper".

What the author's script does, and what this reproduction does:
- Generation, not likelihood: MMLU and BoolQ generate 1 token, ARC and CommonsenseQA 2; the first character of
  the stripped, uppercased output is compared with the gold letter (BoolQ: T/F).
- Sampling: the script calls the model's own generate(), whose sampling settings are not public; here every
  token is drawn at temperature 1 from the full distribution, seeded per (run, item, step). Each metric is the
  mean of `paper_runs` runs (the author: 10).
- SQuAD: 256 answerable items whose first gold answer has <= 8 characters, output matched by substring
  (gold in output, uppercased). BLEU: 128 pairs per direction, mean sentence BLEU of uppercased text with
  sacreBLEU's default tokenizer. The author generates as many tokens as the gold answer has characters (an
  answer-length leak); that happens here only with --paper-length-leak, otherwise every item gets the author's
  fixed cap of 100 tokens.
- The author's "±" is 1.96 * std over runs / sqrt(runs): sampling noise only. It is kept in the task info
  (author_ci95_halfwidth); the reported ci95 is a bootstrap over items of the per-item mean over runs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from growlm.evals.choice import majority_baseline
from growlm.evals.decoding import Generation, SeededSampler, generate_items
from growlm.evals.records import SampledChoiceItem, Score, TaskResult
from growlm.evals.settings import EvalContext, EvalSettings
from growlm.evals.stats import mean_ci

TEMPERATURE = 1.0
FIXED_CAP = 100  # the author's max_new_tokens for SQuAD and BLEU; his leak is min(len(gold), FIXED_CAP)


@dataclass(frozen=True)
class PaperChoiceItem:
    id: str
    prompt: str
    gold: str  # one character
    n_choices: int
    group: str = ""


def length_caps(references: list[str], settings: EvalSettings) -> list[int]:
    """Per-item generation length: the gold answer's character count (leak) only when explicitly asked for."""
    if settings.paper_length_leak:
        return [max(1, min(len(r), FIXED_CAP)) for r in references]
    return [FIXED_CAP] * len(references)


def sampled_runs(
    task: str, model, tokenizer, prompts: list[str], caps: int | list[int], settings: EvalSettings
) -> list[list[Generation]]:
    runs = []
    for run in range(settings.paper_runs):
        desc = f"{task} (paper protocol, run {run + 1}/{settings.paper_runs})"
        runs.append(
            generate_items(
                desc,
                model,
                tokenizer,
                prompts,
                caps,
                settings,
                stop=None,
                sampler=SeededSampler(settings.seed + run, TEMPERATURE),
            )
        )
    return runs


def run_spread(per_item_runs: np.ndarray) -> dict:
    """The author's statistics over runs (per_item_runs: items x runs)."""
    run_means = per_item_runs.mean(axis=0)
    std = float(run_means.std())
    return {
        "run_means": run_means.tolist(),
        "run_std": std,
        "author_ci95_halfwidth": 1.96 * std / np.sqrt(len(run_means)),
    }


def paper_score(
    task: str, metric: str, per_item_runs: np.ndarray, chance: float | None, split: str, settings: EvalSettings
) -> Score:
    value, ci = mean_ci(per_item_runs.mean(axis=1), settings.resamples, settings.seed)
    return Score(task, metric, value, ci, len(per_item_runs), chance, split, 0, "paper")


def first_letter(output: str) -> str:
    return output.strip().upper()[:1]


def run_paper_choice(
    model, tokenizer, ctx: EvalContext, items: list[PaperChoiceItem], new_tokens: int, info: dict
) -> TaskResult:
    """The paper-protocol task result of `items`, scored under the name ctx.task (and ctx.task/group per group)."""
    task, split, settings = ctx.task, ctx.split, ctx.settings
    runs = sampled_runs(task, model, tokenizer, [it.prompt for it in items], new_tokens, settings)
    correct = np.array(
        [[first_letter(run[i].text) == it.gold.upper() for run in runs] for i, it in enumerate(items)], dtype=float
    ).reshape(len(items), len(runs))
    records = [
        SampledChoiceItem(
            id=it.id,
            group=it.group or None,
            prompt=it.prompt,
            gold=it.gold,
            outputs=tuple(run[i].text for run in runs),
            correct=tuple(correct[i].astype(bool).tolist()),
            score=float(correct[i].mean()),
        )
        for i, it in enumerate(items)
    ]
    cut = [bool(runs[0][i].truncated_tokens) for i in range(len(items))] if runs else [False] * len(items)

    def score(name: str, rows: list[int]) -> Score:
        chance = float(np.mean([1 / items[i].n_choices for i in rows])) if rows else None
        return replace(
            paper_score(name, "acc", correct[rows], chance, split, settings),
            truncated=float(np.mean([cut[i] for i in rows])) if rows else 0.0,
            majority=majority_baseline([items[i].gold.upper() for i in rows]),
        )

    scores = [score(task, list(range(len(items))))]
    for group in sorted({it.group for it in items if it.group}):
        scores.append(score(f"{task}/{group}", [i for i, it in enumerate(items) if it.group == group]))
    return TaskResult(
        task,
        scores,
        records,
        {**info, "protocol": "paper", "runs": settings.paper_runs, "temperature": TEMPERATURE, **run_spread(correct)},
    )
