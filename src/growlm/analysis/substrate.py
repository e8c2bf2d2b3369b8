"""What a frozen substrate looks like from inside: nearest neighbours of sample tokens (cosine; for a visual
substrate they should be look-alikes, not synonyms), row-norm and pairwise-cosine histograms, duplicate rows and
the rank of a row sample (a binary substrate has rank <= 16)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from growlm.analysis.plots import save_png
from growlm.analysis.tables import Table
from growlm.errors import GrowlmError
from growlm.io.atomic import atomic_write_json
from growlm.io.outputs import atomic_dir
from growlm.substrate import load_substrate
from growlm.substrate.collisions import collision_groups
from growlm.tokenizer import BvvTokenizer

DEFAULT_SAMPLE = ["A", "a", "O", "0", "l", "1", "I", "B", "8", "e", "c", "Ж", "и", "ω", "中", "日", "人", "!", "-"]


def visible(text: str) -> str:
    """Whitespace and control characters as ⟨U+XXXX⟩ so a table shows what the token is."""
    return "".join(c if c.isprintable() and not c.isspace() else f"⟨U+{ord(c):04X}⟩" for c in text)


def token_ids(tokenizer: BvvTokenizer, texts: list[str], vocab: int) -> list[int]:
    by_text = {text: i for i, text in tokenizer.ngrams.items()}
    ids = []
    for text in texts:
        i = ord(text) if len(text) == 1 else by_text.get(text)
        if i is None or i >= vocab or tokenizer.token_text(i) != text:
            raise GrowlmError(
                f"token {text!r} is not in the vocabulary; pass single characters or n-grams of the `tokenizer`"
            )
        ids.append(i)
    return ids


@dataclass
class SubstrateReport:
    path: str
    manifest: dict
    shape: tuple[int, int]
    summary: dict
    neighbours: dict[str, list[tuple[str, int, float]]]
    norms: np.ndarray
    pair_cosines: np.ndarray

    def tables(self) -> list[Table]:
        summary = Table(f"Substrate {self.path}", ["property", "value"], [[k, v] for k, v in self.summary.items()])
        k = max((len(v) for v in self.neighbours.values()), default=0)
        rows = [
            [visible(token)] + [f"{visible(text)} {cos:.3f}" for text, _, cos in found]
            for token, found in self.neighbours.items()
        ]
        neighbours = Table("Nearest neighbours (cosine)", ["token", *(f"#{i}" for i in range(1, k + 1))], rows)
        return [summary, neighbours]

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "manifest": self.manifest,
            "shape": list(self.shape),
            "summary": self.summary,
            "neighbours": {
                t: [{"token": s, "id": i, "cosine": round(c, 6)} for s, i, c in found]
                for t, found in self.neighbours.items()
            },
        }


def analyze_substrate(
    path: str | Path,
    tokenizer: BvvTokenizer,
    sample: list[str] | None = None,
    k: int = 8,
    pairs: int = 20000,
    seed: int = 0,
) -> SubstrateReport:
    substrate = load_substrate(path)
    matrix, manifest = substrate.matrix.numpy(), substrate.manifest
    vocab = matrix.shape[0]
    texts = {i: tokenizer.token_text(i) for i in range(vocab)}
    norms_all = np.linalg.norm(matrix, axis=1)
    # Neighbours are searched among real tokens (a text of their own) with a direction (non-zero rows).
    candidates = np.array([i for i in range(vocab) if texts[i] is not None and norms_all[i] > 0])
    if len(candidates) < 2:
        raise GrowlmError(f"{path}: fewer than 2 non-zero token rows; the substrate is empty")
    unit = matrix[candidates] / norms_all[candidates, None]
    position = {int(i): p for p, i in enumerate(candidates)}
    neighbours = {}
    for text, i in zip(sample or DEFAULT_SAMPLE, token_ids(tokenizer, sample or DEFAULT_SAMPLE, vocab)):
        if i not in position:
            raise GrowlmError(f"token {text!r} has a zero row in {path}; pick another sample token")
        cos = unit @ unit[position[i]]
        cos[position[i]] = -np.inf
        best = np.argsort(-cos, kind="stable")[:k]
        neighbours[text] = [(texts[int(candidates[b])], int(candidates[b]), float(cos[b])) for b in best]
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, len(candidates), size=(2, pairs))
    a, b = a[a != b], b[a != b]
    pair_cosines = np.einsum("ij,ij->i", unit[a], unit[b])
    sample_rows = matrix[rng.choice(vocab, size=min(vocab, 4 * matrix.shape[1]), replace=False)]
    collisions = collision_groups(matrix)
    summary = {
        "kind": manifest["kind"],
        "sha256": substrate.sha256,
        "vocabulary (rows)": vocab,
        "dimension": matrix.shape[1],
        "zero rows": int((norms_all == 0).sum()),
        "groups of identical rows": len(collisions),
        "rows in such groups": int(sum(len(g) for g in collisions)),
        f"rank of {len(sample_rows)} sampled rows": int(np.linalg.matrix_rank(sample_rows)),
        "row norm mean": float(norms_all.mean()),
        "row norm min": float(norms_all.min()),
        "row norm max": float(norms_all.max()),
        "pair cosine mean": float(pair_cosines.mean()),
        "pair cosine std": float(pair_cosines.std()),
        "sampled pairs": len(pair_cosines),
    }
    return SubstrateReport(str(path), manifest, matrix.shape, summary, neighbours, norms_all, pair_cosines)


def _histogram(ax, values: np.ndarray, bins: int, colour: str) -> None:
    scale = max(1.0, float(np.abs(values).max()))
    # Unit-normalised rows differ only by rounding: draw them as one bar in a readable window.
    window = None if np.ptp(values) > 1e-5 * scale else (values.min() - 0.05 * scale, values.max() + 0.05 * scale)
    ax.hist(values, bins=bins, range=window, color=colour)
    ax.ticklabel_format(axis="x", useOffset=False)


def plot_histograms(report: SubstrateReport) -> Figure:
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    left, right = fig.subplots(1, 2)
    _histogram(left, report.norms, 60, "C0")
    left.set(xlabel="row L2 norm", ylabel="rows", title="Row norms")
    _histogram(right, report.pair_cosines, 80, "C2")
    right.axvline(0, color="0.4", lw=0.8)
    right.set(xlabel="cosine", ylabel="pairs", title=f"Cosine of {len(report.pair_cosines):,} random token pairs")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.suptitle(f"Substrate {report.summary['kind']} {report.shape[0]} x {report.shape[1]}")
    return fig


def write_substrate_report(report: SubstrateReport, out: str | Path, force: bool = False) -> Path:
    """OUT/histograms.png, OUT/substrate.json (summary and neighbours), OUT/substrate.md (the tables)."""
    with atomic_dir(out, force, kind="substrate report") as tmp:
        save_png(plot_histograms(report), tmp / "histograms.png")
        atomic_write_json(tmp / "substrate.json", report.to_json())
        (tmp / "substrate.md").write_text("\n".join(t.to_markdown() for t in report.tables()), encoding="utf-8")
    return Path(out)
