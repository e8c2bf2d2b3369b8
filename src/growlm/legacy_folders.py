"""How growlm 0.1.0 folders made before folder marks (io.ownership.MARK_FILE) are recognised: by the names those
versions wrote. A frozen record, so it names other owners' files; never extend it when a folder gains a file: the
owner's mark lists the new names (io.ownership.mark_folder / add_entries).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

MARKERS = {
    "growlm.json": "model folder",
    "composition.json": "composition folder",
    "study.json": "study folder",
    "growlm_tokenizer.json": "tokenizer folder",
    "state.json": "checkpoint",
    "tsne.json": "t-SNE report",
    "substrate.json": "substrate report",
}
RUN_ENTRIES = set(
    "config.resolved.toml manifest.json metrics.jsonl resumes.jsonl tensorboard checkpoints tokenizer "
    "data substrate stages eval_by_depth.json eval_by_depth.csv eval_by_depth.png "
    "eval_by_depth_paper.json eval_by_depth_paper.csv eval_by_depth_paper.png report.html report.md".split()
)
STUDY_ENTRIES = set(
    "study.json inputs inputs-binary heldout runs configs composed tables tables.md plots report.html report.md".split()
)
# Markers with common names (a `datasets` folder has a state.json too) count only in a folder holding nothing but
# what growlm put there, and a checkpoint's state.json only with growlm's keys.
MARKED_ENTRIES = {
    "state.json": {"state.json", "model.safetensors", "optimizer.pt", "rng.pt"},
    "study.json": STUDY_ENTRIES,
    "tsne.json": {"tsne.json", "tsne.png", "scores.png", "scores.md"},
    "substrate.json": {"substrate.json", "histograms.png", "substrate.md"},
}
STATE_KEYS = {"stage", "stage_step", "global_step", "sha256"}
RUN_INPUTS = {"tokenizer", "data", "substrate", "shards-clean", "inputs.json", "decontamination.json"}
INPUT_FILES = {"inputs.json", "decontamination.json"}

KindOf = Callable[[Path], "str | None"]


def legacy_entries(kind: str | None) -> set[str]:
    """What a folder of this kind held, where --force must tell growlm's files from a user's."""
    return {"run directory": RUN_ENTRIES, "study folder": STUDY_ENTRIES}.get(kind, set())


def legacy_kind(
    path: Path, names: set[str], kind_of: KindOf, leftover: Callable[[Path], bool], read_json: Callable[[Path], Any]
) -> str | None:
    """The kind of an unmarked folder holding `names` (temporaries left out), or None."""

    def keys(file: Path) -> set[str]:
        data = read_json(file)
        return set(data) if isinstance(data, dict) else set()

    def growlm_format(file: Path) -> str | None:
        data = read_json(file)
        fmt = data.get("format") if isinstance(data, dict) else None
        return fmt.removeprefix("growlm-").rsplit("-v", 1)[0] + " folder" if str(fmt).startswith("growlm-") else None

    def built(p: Path) -> bool:
        """An input folder growlm built, or one it was building when stopped (nothing but temporaries)."""
        return kind_of(p) is not None or (p.is_dir() and all(map(leftover, p.iterdir())))

    if names & {"config.resolved.toml", "metrics.jsonl"}:
        return "run directory" if names <= RUN_ENTRIES else None
    for marker, kind in MARKERS.items():
        if (
            marker in names
            and names <= MARKED_ENTRIES.get(marker, names)
            and (marker != "state.json" or STATE_KEYS <= keys(path / marker))
        ):
            return kind
    if "manifest.json" in names:
        return growlm_format(path / "manifest.json")
    # a run killed before its header (or a study's inputs): only built inputs, each recognised
    if (
        names
        and names <= RUN_INPUTS
        and all(map(built, (path / n for n in names - INPUT_FILES)))
        and all(growlm_format(path / n) for n in names & INPUT_FILES - {"inputs.json"})
    ):
        return "run directory"
    # a study killed before study.json: its configs, or inputs growlm built
    inputs = names & {"inputs", "inputs-binary"}
    if (
        names
        and names <= STUDY_ENTRIES
        and ("configs" in names or (inputs and all(map(built, (path / n for n in inputs)))))
    ):
        return "study folder"
    return None
