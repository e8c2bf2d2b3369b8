"""How well labelled vectors separate into their groups, measured in the original space with cosine geometry."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import silhouette_score


def silhouette(vectors: np.ndarray, labels: Sequence[str]) -> float | None:
    """Mean silhouette (cosine distance), in [-1, 1]: ~0 for no group structure, 1 for tight separated groups.

    None when it is undefined (fewer than 2 labels, or every point its own label).
    """
    n_labels = len(set(labels))
    if n_labels < 2 or n_labels >= len(labels):
        return None
    return float(silhouette_score(vectors, list(labels), metric="cosine"))


def knn_purity(vectors: np.ndarray, labels: Sequence[str], k: int) -> float:
    """Mean fraction of each point's k nearest neighbours (cosine) that share its label."""
    labels = np.asarray(labels)
    k = min(k, len(labels) - 1)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    neighbours = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    return float((labels[neighbours] == labels[:, None]).mean())


def knn_purity_chance(labels: Sequence[str]) -> float:
    """Expected kNN purity when neighbours are drawn at random: mean of (group size - 1) / (n - 1)."""
    labels = np.asarray(labels)
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return float(((counts[inverse] - 1) / (len(labels) - 1)).mean())
