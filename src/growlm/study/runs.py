"""The runs of a study: configs built from a repo config plus overrides, shared inputs, train / resume / reuse.

Every run is trained by the grow recipe (growlm.train.recipe, in this process) from the exact config the study
wrote to STUDY/configs/. A run whose last stage has been exported is complete and reused; one with a checkpoint is
resumed; anything else starts from scratch. A run made with another config (another --scale or --set) is
refused rather than silently mixed into the study.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import growlm
from growlm.config import Patch, RunConfig, overlay, parse_assignment, read_toml, to_toml
from growlm.errors import GrowlmError
from growlm.io.atomic import atomic_write_json, atomic_write_text
from growlm.train.checkpoint import latest_checkpoint
from growlm.train.metrics import read_metrics
from growlm.train.records import MetricRow, StageSummary
from growlm.train.rundir import RunDir


def say(message: str) -> None:
    print(f"[study] {message}", flush=True)


def config_file(name: str) -> Path:
    """A config shipped with growlm: package data when installed, the source tree's configs/ otherwise."""
    package = Path(growlm.__file__).resolve().parent
    for folder in (package / "configs", package.parents[1] / "configs"):
        if (folder / name).is_file():
            return folder / name
    raise GrowlmError(f"config {name} is missing from growlm's configs/; reinstall growlm or restore the file")


def read_config_data(name: str) -> dict:
    return read_toml(config_file(name))


def configure(data: dict | RunConfig, *patches: Patch, sets: Sequence[str] = (), source: str = "config") -> RunConfig:
    """`data` (a config or TOML data) with the study's `patches` applied, then the user's KEY=VALUE `sets`."""
    return overlay(
        data, *patches, *(parse_assignment(a) for a in sets), source=f"{source} (study settings and overrides)"
    )


def shared_inputs(cfg: RunConfig, folder: Path, against: tuple[str, ...] = ()) -> Patch:
    """Build the tokenizer, shards and substrate `cfg` names once into `folder`; the patch pointing runs at them.

    `against`: evaluation tasks the study scores; the shards' documents that overlap any of their items
    (growlm.data.decontaminate: 13-grams, whole items under 13 words) are dropped into FOLDER/shards-clean, which
    the runs then train on; FOLDER/decontamination.json counts what was checked and dropped.
    """
    from growlm.train.inputs import resolve_inputs

    key = cfg.model_dump(include={"tokenizer", "data", "substrate"})
    if against:
        key["decontaminate_against"] = list(against)
    stamp = folder / "inputs.json"
    if stamp.is_file() and json.loads(stamp.read_text(encoding="utf-8")) != key:
        raise GrowlmError(
            f"{folder} was built with other settings (another `scale` or `overrides`?); pass `force` to "
            "start the study over, or choose another `out`"
        )
    built = stamp.is_file()
    if built:
        say(f"inputs in {folder} (reused)")
    else:
        say(f"inputs in {folder}: building tokenizer, shards, substrate")
        shutil.rmtree(folder, ignore_errors=True)  # what an interrupted build left is not to be trusted
        folder.mkdir(parents=True)
    inputs = resolve_inputs(cfg, RunDir(folder))
    shards = inputs.shards.resolve()
    if against:
        shards = folder / "shards-clean"
        if not built:
            decontaminate(inputs.shards, against, shards, folder / "decontamination.json")
    atomic_write_json(stamp, key)
    patch = {
        "tokenizer": {"path": cfg.tokenizer.path or str((folder / "tokenizer").resolve())},
        "data": {"shards": str(shards.resolve())},
    }
    if inputs.substrate is not None:
        patch["substrate"] = {"path": cfg.substrate.path or str((folder / "substrate").resolve())}
    return patch


def decontaminate(shards: Path, tasks: tuple[str, ...], out: Path, record: Path) -> None:
    from growlm.data.decontaminate import drop_overlapping
    from growlm.evals.contamination import covered, item_texts

    checked = [t for t in tasks if covered(t)]
    texts = [text for task in checked for text in item_texts(task)]
    say(f"decontaminating the shards against {', '.join(checked)} ({len(texts):,} items)")
    report = drop_overlapping(shards, texts, out, force=True)
    atomic_write_json(
        record,
        {
            "format": "growlm-study-decontamination-v1",
            "tasks": checked,
            "not_checked": [t for t in tasks if t not in checked],
            "n": report.n,
            "items": report.items,
            "items_matched_whole": report.items_exact,
            "items_too_short": report.items_too_short,
            "documents_checked": report.documents_checked,
            "documents_dropped": len(report.overlaps),
            "chars_dropped": sum(o.chars for o in report.overlaps),
            "contaminated_items": len(report.contaminated_items),
            "dropped": [
                {"source": o.source, "split": o.split, "doc_id": o.doc_id, "items": o.items[:10], "ngram": o.ngram}
                for o in report.overlaps
            ],
        },
    )


def decontamination_counts(folder: Path) -> dict | None:
    """The counts shared_inputs recorded for `folder` (None if it was not decontaminated)."""
    record = folder / "decontamination.json"
    if not record.is_file():
        return None
    data = json.loads(record.read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if k not in ("format", "dropped")}


@dataclass(frozen=True)
class RunSpec:
    label: str  # e.g. "constructive/seed-0"; also names its config file
    path: Path
    config: RunConfig
    base: RunSpec | None = None  # a finished run this one continues (its first stages; recipe.branch)
    # A finished run's checkpoints serve only a branch from it (its stages/ hold every model a study reads): a
    # study drops them unless other runs branch from this one (cpu-scale ladder: 351 MB a run, 141 MB of them).
    keep_checkpoints: bool = False

    @property
    def n_stages(self) -> int:
        return len(self.config.growth.stages)

    @property
    def run(self) -> RunDir:
        return RunDir(self.path)

    def stage_model(self, stage: int) -> Path:
        return self.run.stage_model(stage)

    @property
    def final_model(self) -> Path:
        return self.stage_model(self.n_stages)

    @property
    def complete(self) -> bool:
        from growlm.model.folder import is_model_folder

        return is_model_folder(self.final_model)

    def summary(self) -> list[StageSummary]:
        return self.run.read_summaries()

    def metrics(self) -> list[MetricRow]:
        return read_metrics(self.run.metrics)

    def tokens_per_param(self) -> tuple[float, float]:
        """(training tokens per trainable parameter of the stage that trained the most, per non-embedding
        parameter of the final model: its blocks and norms, without the V x d input embedding and LM head), to
        place a run against the literature's tokens-per-parameter axis."""
        from growlm.train.memory import block_params

        summaries = self.summary()
        tokens = summaries[-1].tokens
        # from the config: a LoRA stage's own count includes adapters that the final, merged model no longer has
        final = self.config.stage_models()[-1]  # a widened run's final shape
        non_embedding = summaries[-1].depth * block_params(final) + final.d_model
        return tokens / max(s.trainable_params for s in summaries), tokens / non_embedding


def ensure_run(spec: RunSpec, configs: Path) -> None:
    """Train, resume or reuse the run."""
    from growlm.train.recipe import grow
    from growlm.train.start import Branch, New, Resume

    resolved = spec.run.config_file
    if resolved.is_file() and spec.run.read_config().model_dump() != spec.config.model_dump():
        raise GrowlmError(
            f"run {spec.path} was trained with another config (another `scale` or `overrides`?); pass "
            "`force` to start the study over, or choose another `out`"
        )
    if spec.complete:
        say(f"reusing run {spec.label} ({spec.path})")
        return
    # a record of what the study trained, beside the run's own config.resolved.toml
    atomic_write_text(configs / f"{spec.label.replace('/', '_')}.toml", to_toml(spec.config))
    resume = resolved.is_file() and latest_checkpoint(spec.run.checkpoints) is not None
    if spec.base is not None and not resume:
        ensure_run(spec.base, configs)
    say(f"{'resuming' if resume else 'training'} run {spec.label} ({spec.path})")
    # Without a checkpoint nothing can be resumed: a run killed that early starts over (force clears it); a branch
    # starts over from its base.
    fresh = Branch(spec.base.path, force=True) if spec.base is not None else New(force=True)
    try:
        grow(None if resume else spec.config, spec.path, start=Resume() if resume else fresh)
    except GrowlmError as err:
        raise GrowlmError(
            f"training run {spec.label} failed: {err}; fix the cause and rerun the study: finished "
            "runs are reused and this one resumes"
        ) from None
    if not spec.complete:
        raise GrowlmError(f"training run {spec.label} ended without its final model; rerun the study to resume it")
    if not spec.keep_checkpoints:
        shutil.rmtree(spec.run.checkpoints, ignore_errors=True)
