"""Multiple-choice scoring: the answer with the highest log-likelihood wins.

acc: argmax of the summed log-likelihood. acc_norm: argmax of the log-likelihood divided by the UTF-8 byte
length of the continuation as scored (leading space included), so long answers are not penalised for their
length and scripts with multi-byte characters are measured on the same scale. Ties go to the first choice.
Chance: the mean over items of 1 / (number of choices).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from growlm.evals.harness import ChoiceRequest, score_choices
from growlm.evals.results import Score, TaskResult
from growlm.evals.settings import EvalSettings
from growlm.evals.stats import mean_ci


@dataclass(frozen=True)
class McItem:
    id: str
    context: str
    continuations: tuple[str, ...]
    gold: int
    group: str = ""  # a subset reported on its own as well (MMLU subject)


def _argmax(values) -> int:
    return int(np.argmax(values))  # first maximum


def item_record(item: McItem, lls: tuple[float, ...], tokens: tuple[int, ...], context_tokens: int,
                truncated: int) -> dict:
    n_bytes = [len(c.encode("utf-8")) for c in item.continuations]
    pred = _argmax(lls)
    pred_norm = _argmax([ll / b for ll, b in zip(lls, n_bytes)])
    return {
        "id": item.id, **({"group": item.group} if item.group else {}),
        "context": item.context, "continuations": list(item.continuations),
        "loglikelihoods": list(lls), "bytes": n_bytes, "tokens": list(tokens),
        "context_tokens": context_tokens, "truncated_tokens": truncated,
        "gold": item.gold, "pred": pred, "pred_norm": pred_norm,
        "correct": pred == item.gold, "correct_norm": pred_norm == item.gold,
    }


def accuracy_scores(task: str, records: list[dict], n_choices: list[int], metrics: tuple[str, ...], split: str,
                    shots: int, protocol: str, settings: EvalSettings) -> list[Score]:
    chance = float(np.mean([1 / n for n in n_choices])) if n_choices else None
    field = {"acc": "correct", "acc_norm": "correct_norm"}
    scores = []
    for metric in metrics:
        value, ci = mean_ci([float(r[field[metric]]) for r in records], settings.resamples, settings.seed)
        scores.append(Score(task, metric, value, ci, len(records), chance, split, shots, protocol))
    return scores


def run_multiple_choice(task: str, items: list[McItem], model, tokenizer, settings: EvalSettings, split: str,
                        metrics: tuple[str, ...] = ("acc", "acc_norm"), info: dict | None = None) -> TaskResult:
    with tqdm(total=len(items), desc=task, unit="item", disable=not settings.progress) as bar:
        scored = score_choices(model, tokenizer, [ChoiceRequest(it.context, it.continuations) for it in items],
                               settings.batch_tokens, settings.max_batch, bar)
    records = [item_record(it, s.loglikelihoods, s.continuation_tokens, s.context_tokens, s.truncated_tokens)
               for it, s in zip(items, scored)]
    sizes = [len(it.continuations) for it in items]
    scores = accuracy_scores(task, records, sizes, metrics, split, settings.shots, "harness", settings)
    for group in sorted({it.group for it in items if it.group}):
        members = [k for k, it in enumerate(items) if it.group == group]
        scores += accuracy_scores(f"{task}/{group}", [records[k] for k in members], [sizes[k] for k in members],
                                  metrics, split, settings.shots, "harness", settings)
    return TaskResult(task, scores, records, info or {})
