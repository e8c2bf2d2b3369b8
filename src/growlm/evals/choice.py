"""Multiple-choice scoring: the answer with the highest log-likelihood wins.

acc: argmax of the summed log-likelihood. acc_norm: argmax of the log-likelihood divided by the character length
of the choice as the task states it, without the target delimiter (the one space between prompt and answer):
lm-evaluation-harness 0.4's rule (len() of each doc_to_choice string). Ties go to the first choice.
Chance: the mean over items of 1 / (number of choices). Majority: the accuracy of always picking the most frequent
gold choice index (for fixed answers such as yes/no or the letters A-D, always giving the most frequent gold
answer), so a bias towards one answer is visible next to the score.
Items with an answer longer than the model's window are skipped and counted (Score.skipped); Score.truncated is
the share of scored items whose context was cut to fit.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from growlm.evals.harness import ChoiceRequest, ChoiceScores, score_choices
from growlm.evals.records import ChoiceItem, Score, TaskResult
from growlm.evals.settings import EvalContext, EvalSettings
from growlm.evals.stats import mean_ci

TARGET_DELIMITER = " "  # lm-evaluation-harness's default target_delimiter


@dataclass(frozen=True)
class McItem:
    id: str
    context: str
    continuations: tuple[str, ...]  # exactly as scored: delimiter + choice
    gold: int
    group: str = ""  # a subset reported on its own as well (MMLU subject)


def choice_text(continuation: str) -> str:
    """The choice as the task states it: the continuation without its leading target delimiter."""
    return continuation.removeprefix(TARGET_DELIMITER)


def _argmax(values) -> int:
    return int(np.argmax(values))  # first maximum


def item_record(item: McItem, scored: ChoiceScores | None) -> dict:
    """The item's record as its JSON (records.ChoiceItem types it); `scored` None: skipped."""
    record = {
        "id": item.id,
        **({"group": item.group} if item.group else {}),
        "context": item.context,
        "continuations": list(item.continuations),
        "gold": item.gold,
    }
    if scored is None:
        return {**record, "skipped": True, "reason": "an answer is longer than the model's window"}
    lls = scored.loglikelihoods
    n_chars = [len(choice_text(c)) for c in item.continuations]
    pred = _argmax(lls)
    pred_norm = _argmax([ll / max(n, 1) for ll, n in zip(lls, n_chars)])
    return {
        **record,
        "skipped": False,
        "loglikelihoods": list(lls),
        "chars": n_chars,
        "tokens": list(scored.continuation_tokens),
        "context_tokens": list(scored.context_tokens),
        "truncated_tokens": list(scored.truncated_tokens),
        "truncated": scored.truncated,
        "pred": pred,
        "pred_norm": pred_norm,
        "correct": pred == item.gold,
        "correct_norm": pred_norm == item.gold,
    }


def majority_baseline(golds: list[int]) -> float | None:
    """Accuracy of always answering the most frequent gold index."""
    return Counter(golds).most_common(1)[0][1] / len(golds) if golds else None


def accuracy_scores(
    task: str,
    records: list[dict],
    n_choices: list[int],
    metrics: tuple[str, ...],
    split: str,
    shots: int,
    protocol: str,
    settings: EvalSettings,
) -> list[Score]:
    """One score per metric over the scored (not skipped) records; n_choices is per record."""
    kept = [(r, n) for r, n in zip(records, n_choices) if not r["skipped"]]
    scored = [r for r, _ in kept]
    chance = float(np.mean([1 / n for _, n in kept])) if kept else None
    truncated = float(np.mean([r["truncated"] for r in scored])) if scored else 0.0
    majority = majority_baseline([r["gold"] for r in scored])
    field = {"acc": "correct", "acc_norm": "correct_norm"}
    scores = []
    for metric in metrics:
        value, ci = mean_ci([float(r[field[metric]]) for r in scored], settings.resamples, settings.seed)
        scores.append(
            Score(
                task,
                metric,
                value,
                ci,
                len(scored),
                chance,
                split,
                shots,
                protocol,
                truncated,
                len(records) - len(scored),
                majority,
            )
        )
    return scores


def run_multiple_choice(
    model,
    tokenizer,
    ctx: EvalContext,
    items: list[McItem],
    metrics: tuple[str, ...] = ("acc", "acc_norm"),
    info: dict | None = None,
) -> TaskResult:
    """The task result of `items`, scored under the name ctx.task (and ctx.task/group per group)."""
    task, split, settings = ctx.task, ctx.split, ctx.settings
    with tqdm(total=len(items), desc=task, unit="item", disable=not settings.progress) as bar:
        scored = score_choices(
            model,
            tokenizer,
            [ChoiceRequest(it.context, it.continuations) for it in items],
            settings.batch_tokens,
            settings.max_batch,
            bar,
        )
    records = [item_record(it, s) for it, s in zip(items, scored)]
    sizes = [len(it.continuations) for it in items]
    scores = accuracy_scores(task, records, sizes, metrics, split, settings.shots, "harness", settings)
    for group in sorted({it.group for it in items if it.group}):
        members = [k for k, it in enumerate(items) if it.group == group]
        scores += accuracy_scores(
            f"{task}/{group}",
            [records[k] for k in members],
            [sizes[k] for k in members],
            metrics,
            split,
            settings.shots,
            "harness",
            settings,
        )
    typed = [ChoiceItem.from_json(r, f"{task} item {k}") for k, r in enumerate(records)]
    return TaskResult(task, scores, typed, info or {})
