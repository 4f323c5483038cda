"""The protocol of ``bench/tag_sources.py`` (docs/results.md, "Tags: sources and heads"): 5 artist-disjoint folds,
fold f tests, fold f + 1 chooses C, the head is refitted on training + validation."""

from __future__ import annotations

import numpy as np

C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
W_GRID = (0.0, 0.25, 0.5, 1.0, 2.0)  # late fusion: weight of a tagger's zero-shot logit


# -- the protocol: 5 artist-disjoint folds, fold f tests, f + 1 chooses C, refit on train + val ----------------------


HEAD = {"kind": "logreg"}  # "mlp": a small MLP instead (C then stands for 1 / alpha)


def _fit_predict(X, Y, train, test, *, multilabel, C):
    """Standardise on ``train``, fit L2 logistic regression, predict ``test``: (n_test, K) probabilities.

    scikit-learn's lbfgs, one binary fit per label for ``multilabel``, as the loop's ``head`` mode fits.
    With ``HEAD["kind"] == "mlp"``: one hidden layer of 256 ReLUs (``alpha = 1 / C``), Adam, early stopping.
    """
    import warnings

    from sklearn.linear_model import LogisticRegression

    mu, sd = X[train].mean(0), X[train].std(0) + 1e-8
    Xt, Xs = (X[train] - mu) / sd, (X[test] - mu) / sd
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if HEAD["kind"] == "mlp":
            from sklearn.neural_network import MLPClassifier

            mlp = MLPClassifier((256,), alpha=1.0 / C, max_iter=300, early_stopping=True, random_state=0)
            y = Y[train]
            if multilabel:
                keep = (y.sum(0) > 0) & (y.sum(0) < len(y))
                mlp.fit(Xt, y[:, keep])
                P = np.tile(y.mean(0), (len(test), 1))
                P[:, keep] = mlp.predict_proba(Xs)
                return P
            mlp.fit(Xt, y)
            P = np.zeros((len(test), int(Y.max()) + 1))
            P[:, mlp.classes_] = mlp.predict_proba(Xs)
            return P
        if multilabel:
            P = np.zeros((len(test), Y.shape[1]))
            for k in range(Y.shape[1]):
                yk = Y[train, k] > 0.5
                if yk.all() or not yk.any():
                    P[:, k] = float(yk.all())
                    continue
                P[:, k] = LogisticRegression(C=C, max_iter=2000).fit(Xt, yk).predict_proba(Xs)[:, 1]
            return P
        clf = LogisticRegression(C=C, max_iter=2000).fit(Xt, Y[train])
        P = np.zeros((len(test), int(Y.max()) + 1))
        P[:, clf.classes_] = clf.predict_proba(Xs)
        return P


def _score(Y, P, multilabel):
    """Validation score: macro ROC-AUC (multi-label, over labels present) or macro-F1 (single-label)."""
    from sklearn.metrics import f1_score, roc_auc_score

    if multilabel:
        aucs = [roc_auc_score(Y[:, k], P[:, k]) for k in range(Y.shape[1]) if 0 < Y[:, k].sum() < len(Y)]
        return float(np.mean(aucs))
    if P.shape[1] == 2:
        return float(roc_auc_score(Y, P[:, 1])) if 0 < Y.sum() < len(Y) else 0.5
    return float(f1_score(Y, P.argmax(1), average="macro"))


def folds_of(ds, idx, Y):
    """The project's artist-disjoint folds (``grouped_folds``, seed 0) over the clips ``idx``."""
    from mcbr_core.training.splits import group_key, grouped_folds

    groups = [group_key(ds.clips[i].artist, ds.clips[i].id) for i in idx]
    T = Y if Y.ndim == 2 else np.eye(int(Y.max()) + 1)[Y]
    return grouped_folds(groups, T, 5, seed=0)


def cross_val(X, Y, folds, *, multilabel, zero=None, grid=None):
    """Out-of-fold probabilities ``(n, K)`` under the protocol, and the C (and late-fusion weight) per fold.

    ``zero`` [shape=(n, K)]: a tagger's zero-shot scores, fused late in logit space
    (``logit(p) + w * logit(z)``) with ``w`` chosen on the validation fold from ``W_GRID``.
    """
    P = np.zeros((len(X), Y.shape[1] if multilabel else int(Y.max()) + 1))
    chosen = []
    for f in range(5):
        v = (f + 1) % 5
        train, val, test = (np.flatnonzero((folds != f) & (folds != v)), np.flatnonzero(folds == v),
                            np.flatnonzero(folds == f))  # fmt: skip
        best = (-1.0, None, 0.0)
        for C in grid or C_GRID:
            Pv = _fit_predict(X, Y, train, val, multilabel=multilabel, C=C)
            for w in W_GRID if zero is not None else (0.0,):
                score = _score(Y[val], _late(Pv, zero[val], w) if w else Pv, multilabel)
                if score > best[0] + 1e-9:
                    best = (score, C, w)
        _, C, w = best
        both = np.concatenate([train, val])
        Pt = _fit_predict(X, Y, both, test, multilabel=multilabel, C=C)
        P[test] = _late(Pt, zero[test], w) if w else Pt
        chosen.append((C, w))
    return P, chosen


def _logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _late(P, Z, w):
    return 1 / (1 + np.exp(-(_logit(P) + w * _logit(Z))))


def per_fold(folds, fn):
    """Mean and std over the 5 test folds of ``fn(test_indices)``."""
    vals = [fn(np.flatnonzero(folds == f)) for f in range(5)]
    return float(np.mean(vals)), float(np.std(vals))
