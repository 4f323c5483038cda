"""The closed-form modes: L2-regularised logistic regression on one vector per clip.

``head`` fits it on a pretrained model's clip embedding (the mean of its per-patch
embeddings over the plugin's analysis windows), ``stats`` on the ``mcbr-stats``
features (MFCC, chroma and spectral-contrast statistics). Each is fitted directly with
scikit-learn (one-vs-rest for a multi-label task) and copied into a linear dense head,
so the result is a model file like any other: no optimizer, no epochs.

With several values of the strength ``C`` (the ``head`` default, or arch option
``C`` as a list), each is fitted on the training part and scored (macro-F1) on the
validation part; the best is refitted on training + validation. The test part is
never seen.

A fold writes one checkpoint, ``checkpoints/fold<k>/best.safetensors``; a resumed run
keeps a fold's fit and evaluates it again.
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any

import numpy as np

from mcbr_core.training import metrics as M
from mcbr_core.training.cards import save_checkpoint
from mcbr_core.training.config import CLIP_MODES, TrainConfig
from mcbr_core.training.context import RunContext
from mcbr_core.training.folds import Fold, finish_fold, start_fold
from mcbr_core.training.inference import evaluate, short
from mcbr_core.training.inputs import load_clip
from mcbr_core.training.plans import Plan
from mcbr_core.training.results import FoldResult

log = logging.getLogger(__name__)

__all__ = ["fit_fold", "logistic_regression", "refits_on_val"]


def logistic_regression(X: np.ndarray, y: np.ndarray, *, n_labels: int, multilabel: bool, C: float, max_iter: int,
                        seed: int) -> tuple[np.ndarray, np.ndarray, bool]:  # fmt: skip
    """Logistic regression on clip vectors.

    Parameters
    ----------
    X : np.ndarray [shape=(n, D)]
        Clip vectors.
    y : np.ndarray [shape=(n,) or (n, K)]
        Class indices, or multi-label indicators (one binary fit per label).
    n_labels, multilabel
        ``K``, and the kind of task.
    C, max_iter, seed
        scikit-learn's inverse regularisation strength, iteration limit and ``random_state``.

    Returns
    -------
    W : np.ndarray [shape=(K, D)]
    b : np.ndarray [shape=(K,)]
        Logits are ``X @ W.T + b``; a label absent from training gets a bias of -50.
    converged : bool
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    W = np.zeros((n_labels, X.shape[1]))
    b = np.full(n_labels, -50.0)  # a label absent from training is never predicted
    options = {"C": C, "max_iter": max_iter, "random_state": seed}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        if multilabel:
            for k in range(n_labels):
                yk = y[:, k] > 0.5
                if yk.all() or not yk.any():
                    b[k] = 50.0 if yk.all() else -50.0
                    continue
                clf = LogisticRegression(**options).fit(X, yk)
                W[k], b[k] = clf.coef_[0], clf.intercept_[0]
        else:
            clf = LogisticRegression(**options).fit(X, y)
            classes = clf.classes_.astype(int)
            if len(classes) == 1:
                b[classes[0]] = 0.0
            elif len(classes) == 2:  # sklearn gives one row: logit of classes[1] against classes[0]
                W[classes[1]], b[classes[1]], b[classes[0]] = clf.coef_[0], clf.intercept_[0], 0.0
            else:
                W[classes], b[classes] = clf.coef_, clf.intercept_
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return W, b, converged


def refits_on_val(config: TrainConfig, plan: Plan) -> bool:
    """Whether a closed-form fit chooses C on the validation part and then trains on it too."""
    return config.mode in CLIP_MODES and len(plan.val) > 0 and len(config.c_grid()) > 1


def _vectors(fold: Fold, idx: np.ndarray) -> np.ndarray:
    """The clips' normalised vectors ``(n, C * F)`` (means over time)."""
    return np.stack([fold.norm.apply(load_clip(fold.ctx, int(i))).mean(axis=2).reshape(-1) for i in idx])


def _fit(ctx: RunContext, X: np.ndarray, y: np.ndarray, C: float) -> tuple[np.ndarray, np.ndarray, bool]:
    c = ctx.config
    return logistic_regression(X, y, n_labels=len(ctx.labels), multilabel=ctx.multilabel, C=C,
                               max_iter=int(c.arch_options.get("max_iter", 2000)), seed=c.seed)  # fmt: skip


def _choose_c(fold: Fold, X: np.ndarray, y: np.ndarray, grid: list[float]) -> tuple[float, float, np.ndarray]:
    """Fit each C on the training part, score it on the validation part; the best C, its score, the validation vectors."""
    ctx, plan = fold.ctx, fold.plan
    Xv = _vectors(fold, plan.val)
    scores = []
    for value in grid:
        W, b, _ = _fit(ctx, X, y, value)
        p = Xv @ W.T + b  # (n_val, K) logits: their ranking is all macro-F1 needs
        probs = 1 / (1 + np.exp(-p)) if ctx.multilabel else p
        scores.append(M.evaluate(ctx.y[plan.val], probs, labels=ctx.labels, multilabel=ctx.multilabel,
                                 threshold=ctx.config.threshold)["macro_f1"])  # fmt: skip
    C = grid[int(np.argmax(scores))]
    log.info("fold %d: C=%g (validation macro-F1 %s over C=%s); refitting on training + validation",
             plan.fold, C, " ".join(f"{v:.3f}" for v in scores), ",".join(f"{v:g}" for v in grid))  # fmt: skip
    return C, float(max(scores)), Xv


def fit_head(fold: Fold) -> dict[str, Any]:
    """Fit logistic regression on the clip vectors and copy it into the fold's dense head.

    Returns
    -------
    dict
        The chosen ``C``, the grid and what it was fitted on (for the model card).
    """
    import torch

    ctx, plan = fold.ctx, fold.plan
    grid = ctx.config.c_grid()
    X, y, C, selection = _vectors(fold, plan.train), ctx.y[plan.train], grid[0], None
    if len(grid) > 1 and not len(plan.val):
        C = sorted(grid)[len(grid) // 2]
        log.warning(
            "fold %d: no validation part to choose C on; using C=%g, the middle of the grid", plan.fold, C
        )
    if refits_on_val(ctx.config, plan):
        C, selection, Xv = _choose_c(fold, X, y, grid)
        X, y = np.vstack([X, Xv]), np.concatenate([y, ctx.y[plan.val]])
    W, b, converged = _fit(ctx, X, y, C)
    if not converged:
        log.warning("logistic regression did not converge (raise arch option max_iter)")
    with torch.no_grad():
        fold.net.out.weight.copy_(torch.from_numpy(W).float())
        fold.net.out.bias.copy_(torch.from_numpy(b).float())
    return {"C": C, "C_grid": grid, "fitted_on": "train+val" if selection is not None else "train",
            "val_macro_f1_before_refit": selection}  # fmt: skip


def _fit_and_save(fold: Fold) -> None:
    """Fit the head, score it on the validation part, log it and write the fold's checkpoint."""
    ctx, plan = fold.ctx, fold.plan
    t0 = time.perf_counter()
    fit = fit_head(fold)
    if refits_on_val(
        ctx.config, plan
    ):  # the validation part is training data now: keep its score from before
        val = {"macro_f1": fit["val_macro_f1_before_refit"]}
    else:
        val = evaluate(ctx, fold.net, plan.val, fold.norm, embeddings=False) if len(plan.val) else {}
    ctx.metrics.append({"fold": plan.fold, "epoch": 0, "phase": "epoch", "train_loss": None, **short(val, "val_"),
                        "best": True, "seconds": round(time.perf_counter() - t0, 3), "fit": fit})  # fmt: skip
    save_checkpoint(ctx, plan, fold.net, fold.norm, fold.files.best, metrics=val, epoch=0, epochs=1, fit=fit)


def fit_fold(ctx: RunContext, plan: Plan, *, resume: bool) -> FoldResult:
    """Fit one fold in closed form (or, resuming, keep its earlier fit) and evaluate it."""
    fold = start_fold(ctx, plan)
    if resume and fold.files.best.exists():
        log.info("fold %d: keeping the fit of the resumed run", plan.fold)
        fold.ctx.metrics.truncate(plan.fold, 1)
    else:
        fold.ctx.metrics.truncate(plan.fold, 0)
        _fit_and_save(fold)
    return finish_fold(fold, best_epoch=0, epochs_run=1, stopped_early=False,
                       refitted_on_val=refits_on_val(ctx.config, plan))  # fmt: skip
