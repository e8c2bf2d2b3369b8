"""t-SNE of word groups through a model's depth, and the numbers behind the pictures.

For the substrate (input embedding) and for every layer's attention output and block output, the words' vectors
(see representations.py) are scored in their original space (silhouette of the concept groups and of the
languages, cosine; kNN group purity) and projected to 2-D with scikit-learn's t-SNE (fixed seed). If meaning
emerges with depth, the group silhouette and purity rise from ~0 at the substrate while the language
silhouette (script look-alikes) falls.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from sklearn.manifold import TSNE
from tqdm import tqdm

from growlm.analysis.plots import save_png
from growlm.analysis.representations import SUBSTRATE, layer_and_kind, word_vectors
from growlm.analysis.separation import knn_purity, knn_purity_chance, silhouette
from growlm.analysis.tables import Table
from growlm.analysis.word_groups import Word, load_word_groups
from growlm.composition.folder import is_composition
from growlm.errors import GrowlmError
from growlm.io.atomic import atomic_write_json
from growlm.io.outputs import atomic_dir
from growlm.loading import load_lm
from growlm.tokenizer.layout import BOS_ID

MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]


@dataclass
class Score:
    name: str
    layer: int
    kind: str
    silhouette_group: float | None
    silhouette_language: float | None
    knn_purity_group: float


@dataclass
class TsneResult:
    model: str
    words: list[Word]
    token_ids: list[list[int]]
    scores: list[Score]
    coordinates: dict[str, np.ndarray]
    knn_k: int
    knn_chance_group: float
    perplexity: float
    seed: int

    @property
    def depth(self) -> int:
        return max(s.layer for s in self.scores)

    def table(self) -> Table:
        rows = [[s.name, s.silhouette_group, s.silhouette_language, s.knn_purity_group] for s in self.scores]
        return Table(
            f"Group separation by layer ({len(self.words)} words)",
            ["representation", "silhouette (groups)", "silhouette (languages)", f"kNN@{self.knn_k} purity"],
            rows,
            note=f"silhouette: cosine, in the original space, 0 = no structure; "
            f"kNN purity chance level {self.knn_chance_group:.3f}",
        )

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "seed": self.seed,
            "perplexity": self.perplexity,
            "knn_k": self.knn_k,
            "knn_chance_group": self.knn_chance_group,
            "words": [{**asdict(w), "token_ids": ids} for w, ids in zip(self.words, self.token_ids)],
            "scores": [asdict(s) for s in self.scores],
            "coordinates": {name: xy.round(4).tolist() for name, xy in self.coordinates.items()},
        }


def _score(name: str, vectors: np.ndarray, words: list[Word], knn_k: int) -> Score:
    layer, kind = layer_and_kind(name)
    languages = [w.language for w in words]
    return Score(
        name,
        layer,
        kind,
        silhouette(vectors, [w.group for w in words]),
        silhouette(vectors, languages) if len(set(languages)) > 1 else None,
        knn_purity(vectors, [w.group for w in words], knn_k),
    )


def embed_2d(vectors: np.ndarray, perplexity: float, seed: int) -> np.ndarray:
    """t-SNE of the unit-normalised vectors (Euclidean there ranks pairs as cosine does)."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(unit)


def default_perplexity(n_words: int) -> float:
    return float(min(30.0, max(2.0, (n_words - 1) / 3)))


def analyze_tsne(
    model_dir: str | Path,
    groups_path: str | Path | None = None,
    *,
    seed: int = 0,
    knn_k: int = 5,
    perplexity: float | None = None,
) -> TsneResult:
    model_dir = Path(model_dir)
    if is_composition(model_dir):
        raise GrowlmError(f"{model_dir} is a composition of experts; run the t-SNE on one expert's model folder")
    words = load_word_groups(groups_path)
    perplexity = perplexity or default_perplexity(len(words))
    if not 0 < perplexity < len(words):
        raise GrowlmError(f"`perplexity` {perplexity} must be between 0 and the number of words ({len(words)})")
    if knn_k < 1:
        raise GrowlmError(f"`knn_k` {knn_k} must be at least 1")
    model, tokenizer = load_lm(model_dir)
    token_ids = [tokenizer.encode(w.text, add_special_tokens=False) for w in words]
    bos_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else BOS_ID
    vectors = word_vectors(model.float(), token_ids, bos_id=bos_id)
    scores, coordinates = [], {}
    for name, vecs in tqdm(vectors.items(), desc="t-SNE", unit="repr"):
        scores.append(_score(name, vecs, words, knn_k))
        coordinates[name] = embed_2d(vecs, perplexity, seed)
    return TsneResult(
        str(model_dir),
        words,
        token_ids,
        scores,
        coordinates,
        knn_k,
        knn_purity_chance([w.group for w in words]),
        perplexity,
        seed,
    )


def plot_panels(result: TsneResult) -> Figure:
    """Two rows (attention, block) x one column per layer; the substrate leads the top row, the legend below it."""
    groups = list(dict.fromkeys(w.group for w in result.words))
    languages = list(dict.fromkeys(w.language for w in result.words))
    colours = matplotlib.colormaps["tab10" if len(groups) <= 10 else "tab20"]
    columns = result.depth + 1
    fig = Figure(figsize=(2.9 * columns, 6.2), layout="constrained")
    axes = fig.subplots(2, columns, squeeze=False)
    by_name = {s.name: s for s in result.scores}
    panels = {
        (0, 0): SUBSTRATE,
        **{
            (row, layer): f"layer{layer}.{kind}"
            for layer in range(1, columns)
            for row, kind in enumerate(("attention", "block"))
        },
    }
    group_index = np.array([groups.index(w.group) for w in result.words])
    language_index = np.array([languages.index(w.language) for w in result.words])
    for (row, col), name in panels.items():
        ax, xy, score = axes[row, col], result.coordinates[name], by_name[name]
        for li in range(len(languages)):
            sel = language_index == li
            ax.scatter(
                xy[sel, 0],
                xy[sel, 1],
                c=[colours(g) for g in group_index[sel]],
                marker=MARKERS[li % len(MARKERS)],
                s=14,
                linewidths=0,
                alpha=0.85,
            )
        sil = "–" if score.silhouette_group is None else f"{score.silhouette_group:+.2f}"
        title = "substrate" if name == SUBSTRATE else f"layer {col} {score.kind}"
        ax.set_title(f"{title}\nsilhouette {sil} · kNN {score.knn_purity_group:.2f}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    legend_ax = axes[1, 0]
    legend_ax.axis("off")
    handles = [Line2D([], [], marker="o", ls="", color=colours(i), label=g) for i, g in enumerate(groups)]
    if len(languages) > 1:
        handles += [
            Line2D([], [], marker=MARKERS[i % len(MARKERS)], ls="", color="0.3", label=lang)
            for i, lang in enumerate(languages)
        ]
    legend_ax.legend(handles=handles, loc="center", frameon=False, fontsize=9)
    fig.suptitle(f"t-SNE of word groups by layer: {result.model}", fontsize=11)
    return fig


def plot_scores(result: TsneResult) -> Figure:
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    left, right = fig.subplots(1, 2)
    base = result.scores[0]
    for kind, style in (("attention", "--"), ("block", "-")):
        series = [base] + [s for s in result.scores if s.kind == kind]
        layers = [s.layer for s in series]
        left.plot(layers, [s.silhouette_group for s in series], style, marker="o", color="C0", label=f"groups, {kind}")
        if base.silhouette_language is not None:
            left.plot(
                layers,
                [s.silhouette_language for s in series],
                style,
                marker="s",
                color="C1",
                label=f"languages, {kind}",
            )
        right.plot(layers, [s.knn_purity_group for s in series], style, marker="o", color="C0", label=kind)
    right.axhline(result.knn_chance_group, color="0.5", ls=":", label="chance")
    left.axhline(0, color="0.5", lw=0.8)
    left.set(xlabel="layer (0 = substrate)", ylabel="silhouette (cosine)", title="Cluster separation")
    right.set(
        xlabel="layer (0 = substrate)", ylabel=f"kNN@{result.knn_k} group purity", title="Neighbour purity", ylim=(0, 1)
    )
    for ax in (left, right):
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def write_tsne(result: TsneResult, out: str | Path, force: bool = False) -> Path:
    """OUT/tsne.png (panels), OUT/scores.png, OUT/tsne.json (scores, words, 2-D coordinates), OUT/scores.md."""
    with atomic_dir(out, force, kind="t-SNE report") as tmp:
        save_png(plot_panels(result), tmp / "tsne.png")
        save_png(plot_scores(result), tmp / "scores.png")
        atomic_write_json(tmp / "tsne.json", result.to_json())
        (tmp / "scores.md").write_text(result.table().to_markdown(), encoding="utf-8")
    return Path(out)
