"""Language-model quality: validation loss, perplexity and bits per byte, per language.

Text: a model's own validation shards (--shards DIR; by default the shards of the run a stage model belongs to),
one row per language of the shard sources, or any UTF-8 text file (--task-file perplexity=FILE, documents
separated by blank lines). Documents are decoded to text and encoded with the model's tokenizer, so any model
can be measured on any shards. Each document is scored on its own, after the end-of-text token that separates
documents in training, in windows of the model's context with one token of overlap: every token is predicted
exactly once. loss = nats per token, ppl = exp(loss), bpb = nats / ln 2 / UTF-8 bytes; the chance row is a
uniform guess over the vocabulary. Items (for --limit and the bootstrap) are documents.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
from tqdm import tqdm

from growlm.errors import GrowlmError
from growlm.evals.harness import encode, rolling_windows, sequence_loglikelihoods
from growlm.evals.records import PerplexityItem, Score, TaskResult
from growlm.evals.settings import EvalContext, EvalSettings
from growlm.evals.stats import bootstrap_ci

_BLANK_LINES = re.compile(r"\n\s*\n")


def text_file_documents(path: Path) -> list[str]:
    if not path.is_file():
        raise GrowlmError(f"text file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise GrowlmError(f"{path} is not UTF-8 text (byte {err.start}); convert it first") from None
    return [d.strip() for d in _BLANK_LINES.split(text) if d.strip()]


def run_shards(model_path: Path) -> Path:
    """The shard folder of the run a stage model (RUN/stages/<k>/model) was trained on."""
    from growlm.train.rundir import RunDir

    run = RunDir.of_stage_model(model_path)
    if run is None:
        raise GrowlmError(
            f"{model_path} is not a stage of a growth run; give the text as a task file (`task_files`, "
            "perplexity=FILE.txt) or a shard folder (`shards`)"
        )
    return run.shards()


def shard_documents(folder: Path) -> dict[str, list[str]]:
    """Validation documents of a shard folder as text, by language."""
    from growlm.data.shards import ShardSet

    shards = ShardSet(folder)
    tokenizer = shards.tokenizer()
    by_language: dict[str, list[str]] = {}
    for source, split in zip(shards.sources, shards.splits("val")):
        docs = by_language.setdefault(source.get("language") or Path(source["name"]).name, [])
        docs += [tokenizer.decode(split.document(i).tolist()) for i in range(len(split))]
    return by_language


def measure(name: str, documents: list[str], model, tokenizer, settings: EvalSettings) -> TaskResult:
    window = model.config.max_position_embeddings
    prefix = tokenizer.eos_token_id
    encoded = [encode(tokenizer, d) for d in documents]
    windows = [(k, w) for k, ids in enumerate(encoded) for w in rolling_windows(ids, prefix, window)]
    with tqdm(total=len(windows), desc=name, unit="window", disable=not settings.progress) as bar:
        lls = sequence_loglikelihoods(model, [w for _, w in windows], settings.batch_tokens, settings.max_batch, bar)
    nll = np.zeros(len(documents))
    for (k, _), ll in zip(windows, lls):
        nll[k] -= ll
    stats = np.array([[nll[k], len(ids), len(d.encode("utf-8"))] for k, (d, ids) in enumerate(zip(documents, encoded))])
    metrics = {
        "loss": lambda s: s[0] / s[1],
        "ppl": lambda s: math.exp(s[0] / s[1]),
        "bpb": lambda s: s[0] / math.log(2) / s[2],
    }
    uniform = math.log(model.config.vocab_size)
    total = stats.sum(axis=0)
    chance = {
        "loss": uniform,
        "ppl": float(model.config.vocab_size),
        "bpb": uniform / math.log(2) * total[1] / total[2],
    }
    scores = [
        Score(
            name,
            m,
            f(total),
            bootstrap_ci(stats, f, settings.resamples, settings.seed),
            len(documents),
            chance[m],
            "val",
            0,
            "harness",
        )
        for m, f in metrics.items()
    ]
    records = [PerplexityItem(f"{name}#{k}", float(s[0]), int(s[1]), int(s[2])) for k, s in enumerate(stats)]
    return TaskResult(name, scores, records)


def run(model, tokenizer, ctx: EvalContext) -> TaskResult:
    settings = ctx.settings
    if settings.shots:
        raise GrowlmError("perplexity takes no examples; drop `shots`")
    if "perplexity" in settings.task_files:
        path = settings.task_files["perplexity"]
        groups = {path.stem: text_file_documents(path)}
        source = str(path)
    else:
        folder = settings.shards or run_shards(ctx.model_path)
        groups = shard_documents(folder)
        source = f"validation shards {folder}"
    parts = [
        measure(f"perplexity/{name}", settings.first(docs), model, tokenizer, settings)
        for name, docs in sorted(groups.items())
        if docs
    ]
    if not parts:
        raise GrowlmError(f"{source} holds no documents to measure")
    info = {"source": source, "prefix_token": tokenizer.eos_token_id, "window": model.config.max_position_embeddings}
    return TaskResult("perplexity", [s for p in parts for s in p.scores], [r for p in parts for r in p.items], info)
