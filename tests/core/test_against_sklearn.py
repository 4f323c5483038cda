"""The numpy-only metrics and k-means agree with scikit-learn (used here as the reference only)."""

from __future__ import annotations

import numpy as np
import pytest

from mcbr_core.playlist.kmeans import kmeans
from mcbr_core.training import metrics as M

sk_metrics = pytest.importorskip("sklearn.metrics")
sk_cluster = pytest.importorskip("sklearn.cluster")


@pytest.fixture
def multilabel() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    truth = rng.random((200, 7)) < 0.3
    pred = rng.random((200, 7)) < 0.35
    pred[:, 6] = False  # a label never predicted
    return truth, pred


def test_f1_micro_and_macro(multilabel: tuple[np.ndarray, np.ndarray]) -> None:
    truth, pred = multilabel
    micro, macro = M.f1_scores(truth, pred)
    assert micro == pytest.approx(sk_metrics.f1_score(truth, pred, average="micro"))
    assert macro == pytest.approx(sk_metrics.f1_score(truth, pred, average="macro", zero_division=0))


def test_hamming_and_confusions(multilabel: tuple[np.ndarray, np.ndarray]) -> None:
    truth, pred = multilabel
    assert M.hamming_loss(truth, pred, multilabel=True) == pytest.approx(sk_metrics.hamming_loss(truth, pred))
    np.testing.assert_array_equal(
        M.multilabel_confusion(truth, pred), sk_metrics.multilabel_confusion_matrix(truth, pred)
    )
    rng = np.random.default_rng(1)
    y, y_pred = rng.integers(0, 5, 300), rng.integers(0, 5, 300)
    np.testing.assert_array_equal(
        M.confusion_matrix(y, y_pred, 5), sk_metrics.confusion_matrix(y, y_pred, labels=range(5))
    )


def test_accuracy_single_and_subset() -> None:
    rng = np.random.default_rng(2)
    scores = rng.random((150, 4))
    y = rng.integers(0, 4, 150)
    assert M.accuracy(y, scores) == pytest.approx(sk_metrics.accuracy_score(y, scores.argmax(axis=1)))
    truth = rng.random((150, 4)) < 0.4
    ml_scores = rng.random((150, 4))
    assert M.accuracy(truth, ml_scores, multilabel=True) == pytest.approx(
        sk_metrics.accuracy_score(truth, ml_scores >= 0.5)
    )


@pytest.mark.parametrize("spherical", [False, True])
def test_kmeans_finds_the_clusters_scikit_learn_finds(spherical: bool) -> None:
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(5, 8)) * 6
    x = np.concatenate([c + rng.normal(size=(60, 8)) for c in centres])
    if spherical:
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
    labels, ours = kmeans(x, 5, seed=0, spherical=spherical)
    ref = sk_cluster.KMeans(5, n_init=4, random_state=0).fit(x)
    assert sk_metrics.adjusted_rand_score(ref.labels_, labels) > 0.95
    inertia = ((x - ours[labels]) ** 2).sum()
    assert inertia <= ref.inertia_ * 1.05
