"""The text of every item of an evaluation set, for decontaminating training data against it.

An item's text is every string of its dataset row (question, passage, choices, answer), joined: what a
training document would have to contain to leak the item. Sets come from the rows growlm exports to lm-eval
(evals/lm_eval_export.py), all of each set, not only the items a run scores. Generation tasks without such rows
(squad, translation, perplexity) are not covered here.
"""

from __future__ import annotations

from typing import Iterator

from growlm.errors import GrowlmError


def _strings(value) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def covered(task: str) -> bool:
    from growlm.evals.lm_eval_export import DEFAULT_SPLIT, EXPORTS

    name, _, split = task.partition(":")
    return name == "mmlu" or f"{name}:{split or DEFAULT_SPLIT.get(name, 'validation')}" in EXPORTS


def item_texts(task: str) -> list[str]:
    """Every item of `task` (NAME or NAME:SPLIT, as `growlm eval --tasks` names it) as one text."""
    from growlm.evals.lm_eval_export import DEFAULT_SPLIT, EXPORTS
    from growlm.evals.mmlu import DATASET, subjects
    from growlm.evals.package import hf_rows

    name, _, split = task.partition(":")
    if name == "mmlu":
        rows = [row for subject in subjects() for _, row in hf_rows(f"{DATASET}/{subject}/test")]
    elif covered(task):
        rows = EXPORTS[f"{name}:{split or DEFAULT_SPLIT.get(name, 'validation')}"][1]()
    else:
        raise GrowlmError(
            f"no item texts for {task!r} to decontaminate against; covered: mmlu and {', '.join(EXPORTS)}"
        )
    return [" ".join(_strings(row)) for row in rows]
