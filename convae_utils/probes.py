"""Do the codes mean something? Nearest neighbours in code space and class probes on features.

Introduced in notebook 07 (what the codes are for). The autoencoder was never shown a label; if its
codes still group images by class, they carry meaning beyond the pixels. Two measurements, each on
any features (N, D) -- the codes (``metrics.encode``), PCA features of the same size
(``baselines.fit_pca(...).encode``) or the raw pixels (:func:`pixel_features`):

- **retrieval**: :func:`nearest_neighbours` (Euclidean, ``torch.cdist``) and
  :func:`neighbour_agreement`, the share of an image's ``k`` nearest neighbours that share its class;
- **probes**: :func:`probe_accuracy` fits a classifier on training features and scores test
  accuracy: a linear probe (scikit-learn's ``LogisticRegression`` on standardised features) or kNN.
  :func:`probe_table` runs both on several feature sets, with the same split.
"""

from __future__ import annotations

import warnings

import pandas as pd
import torch

from .checks import check_choice, check_int, describe_shape
from .images import ImageSet, normalize

PROBES = ("logistic", "knn")


def pixel_features(dataset: ImageSet | torch.Tensor) -> torch.Tensor:
    """Raw pixels as features: uint8 (N, 3, 32, 32) -> float32 (N, 3072) on the [-1, 1] scale."""
    pixels = dataset.images if isinstance(dataset, ImageSet) else dataset
    return normalize(pixels.cpu()).flatten(1)


def _features(x, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a float tensor (N, D), got {type(x).__name__}")
    if x.ndim != 2 or len(x) == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must have shape (N, D) with N, D >= 1, got {describe_shape(x)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} holds NaN or infinite values")
    return x.detach().cpu().float()


def _labels(y, n: int, name: str) -> torch.Tensor:
    y = torch.as_tensor(y).detach().cpu().long().flatten()
    if len(y) != n:
        raise ValueError(f"{name} must hold one label per feature row ({n:,}), got {len(y):,}")
    return y


def nearest_neighbours(queries: torch.Tensor, gallery: torch.Tensor, k: int, *,
                       exclude: torch.Tensor | None = None) -> torch.Tensor:
    """Indices (Q, k) of the ``k`` gallery rows nearest to each query row (Euclidean), nearest first.

    ``exclude`` (Q,): for each query, a gallery index it must not return (the query itself, when
    queries are drawn from the gallery); -1 excludes nothing.
    """
    queries, gallery = _features(queries, "queries"), _features(gallery, "gallery")
    if queries.shape[1] != gallery.shape[1]:
        raise ValueError(f"queries and gallery must have the same width, got {describe_shape(queries)} "
                         f"and {describe_shape(gallery)}")
    k = check_int("k", k, maximum=len(gallery) - (exclude is not None))
    distances = torch.cdist(queries, gallery)                          # (Q, G)
    if exclude is not None:
        exclude = torch.as_tensor(exclude).long().flatten()
        rows = torch.nonzero(exclude >= 0).flatten()
        distances[rows, exclude[rows]] = float("inf")
    return distances.topk(k, dim=1, largest=False).indices


def neighbour_agreement(features: torch.Tensor, labels, k: int = 5, *, batch_size: int = 1000) -> float:
    """Share of each image's ``k`` nearest other images (leave-one-out) with its class, averaged: 0..1."""
    features = _features(features, "features")
    labels = _labels(labels, len(features), "labels")
    hits = 0
    for start in range(0, len(features), batch_size):
        rows = torch.arange(start, min(start + batch_size, len(features)))
        found = nearest_neighbours(features[rows], features, k, exclude=rows)
        hits += int((labels[found] == labels[rows, None]).sum())
    return hits / (len(features) * k)


def probe_accuracy(train_features: torch.Tensor, train_labels, test_features: torch.Tensor, test_labels, *,
                   method: str = "logistic", k: int = 5, C: float = 0.01, max_iter: int = 100,
                   seed: int = 0) -> float:
    """Test accuracy (0..1) of a classifier fitted on the training features.

    ``method``: ``"logistic"`` (the linear probe: scikit-learn ``LogisticRegression`` after
    ``StandardScaler``, inverse regularisation ``C``, at most ``max_iter`` L-BFGS iterations) or
    ``"knn"`` (``KNeighborsClassifier`` with ``k`` neighbours, Euclidean). The probe is regularised
    and capped because 3,072 raw pixels take minutes to fit to convergence on a 2-core CPU; the cap
    is the same for every feature set, and a probe stopped by it gives no warning.
    Raises ValueError when the training labels hold fewer than two classes (nothing to tell apart).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    check_choice("method", method, PROBES)
    x_train, x_test = _features(train_features, "train_features"), _features(test_features, "test_features")
    if x_train.shape[1] != x_test.shape[1]:
        raise ValueError(f"train and test features must have the same width, got {describe_shape(x_train)} "
                         f"and {describe_shape(x_test)}")
    y_train = _labels(train_labels, len(x_train), "train_labels")
    y_test = _labels(test_labels, len(x_test), "test_labels")
    classes = torch.unique(y_train)
    if len(classes) < 2:
        raise ValueError(f"a probe needs at least two classes in the training labels, got only class "
                         f"{classes.tolist()}; use a dataset with several classes")
    if method == "logistic":
        classifier = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=check_int("max_iter", max_iter),
                                                                        random_state=seed))
    else:
        classifier = KNeighborsClassifier(n_neighbors=check_int("k", k, maximum=len(x_train)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier.fit(x_train.numpy(), y_train.numpy())
    return float(classifier.score(x_test.numpy(), y_test.numpy()))


def probe_table(features: dict[str, tuple[torch.Tensor, torch.Tensor]], train_labels, test_labels, *,
                k: int = 5, max_iter: int = 100, seed: int = 0) -> pd.DataFrame:
    """Linear-probe and kNN test accuracy for each feature set, on the same split.

    ``features``: ``{name: (train features (N, D), test features (M, D))}``. Returns one row per name
    with columns ``dims``, ``logistic``, ``knn`` (accuracies 0..1) and ``neighbour agreement``
    (:func:`neighbour_agreement` on the test features).
    """
    if not features:
        raise ValueError("features is empty: give {name: (train features, test features)}")
    rows = {}
    for name, (train_x, test_x) in features.items():
        rows[name] = {"dims": int(train_x.shape[1]),
                      "logistic": probe_accuracy(train_x, train_labels, test_x, test_labels, method="logistic",
                                                 max_iter=max_iter, seed=seed),
                      "knn": probe_accuracy(train_x, train_labels, test_x, test_labels, method="knn", k=k),
                      "neighbour agreement": neighbour_agreement(test_x, test_labels, k)}
    table = pd.DataFrame(rows).T
    table["dims"] = table["dims"].astype(int)
    table.index.name = "features"
    return table
