"""One training loop for every model, split and resume case: the entry points.

:func:`train` fits one model on a dataset's official split (or an artist-disjoint
holdout), :func:`cross_validate` fits one per artist-disjoint fold, :func:`run`
picks one of them from ``config.folds``. Both run each fold the same way
(:func:`_run_fold`), which also resumes an interrupted run.

Four modes:

``net``
    a paper architecture (any name registered through the ``register_architectures``
    hook) on a registered feature extractor's output, trained with AdamW on random
    fixed-length crops and evaluated on whole clips (the mean of the per-patch
    probabilities, as the plugin does); see :mod:`mcbr_core.training.epochs`.
``probe``
    a dense head (linear, or one hidden layer) on a frozen pretrained model's
    per-patch embedding (e.g. msd-musicnn's penultimate layer), trained by the same
    epoch loop: the "linear probe".
``head``
    L2-regularised logistic regression on the frozen pretrained model's *clip*
    embedding, fitted in closed form (:mod:`mcbr_core.training.closed_form`). The
    shipped mood and genre models are heads: they share the default model's forward
    pass (see :mod:`mcbr_core.models.clip_head`).
``stats``
    logistic regression on MFCC / chroma / spectral-contrast means and standard
    deviations (the ``mcbr-stats`` extractor): the linear baseline, also closed form.

Every mode saves the same kind of model file (safetensors + model card,
:mod:`mcbr_core.training.cards`) that the ``trained`` backend runs, so any of them
plugs into the beets plugin.

The steps, each a module of this package:

=================  ===========================================================
``config``         :class:`TrainConfig` and its validation
``checks``         :func:`check_trainable`: can these clips train the model?
``runs``           the run folder, ``metrics.jsonl``, resume and "taken" rules
``context``        the run's clips, cached features and targets
``plans``          which clips a fold trains, validates and tests on
``inputs``         normalisation and an extractor's learned state, per fold
``networks``       the fold's network config and seeded build
``folds``          a fold's start and final evaluation
``epochs``         the epoch loop, precise BatchNorm, early stopping, resume
``closed_form``    logistic regression for ``head`` and ``stats``
``cards``          the model cards written with every checkpoint
``inference``      clip-level predictions and metrics on cached features
``evaluate``       ``mcbr eval``: a finished model on a dataset, as the plugin runs it
``distributed``    the epoch loop on several processes (``torchrun``, ``--ray``)
=================  ===========================================================

Before anything is decoded or written, :func:`check_trainable` checks the labelled
clips; the run folder is created after that check (see :mod:`mcbr_core.training.runs`
for when a folder is taken). Every model card fingerprints the clips of its training
and validation parts (:mod:`mcbr_core.training.fingerprint`). Runs are seeded
(:mod:`mcbr_core.training.seeds`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from mcbr_core.errors import ConfigError
from mcbr_core.training import closed_form, epochs
from mcbr_core.training import metrics as M
from mcbr_core.training.cards import finalise_model
from mcbr_core.training.checks import check_trainable
from mcbr_core.training.config import CLIP_MODES, TrainConfig
from mcbr_core.training.context import RunContext, prepare
from mcbr_core.training.datasets.base import Dataset
from mcbr_core.training.distributed import world
from mcbr_core.training.epochs import precise_batchnorm
from mcbr_core.training.plans import Plan, fold_plans, holdout_plan, indicators
from mcbr_core.training.results import CVResult, FoldResult, RunResult, mean_and_std
from mcbr_core.training.runs import run_folder, write_json
from mcbr_core.training.seeds import seed_everything

if TYPE_CHECKING:
    from mcbr_core.plugins import Plugins

__all__ = ["CVResult", "FoldResult", "RunResult", "TrainConfig", "check_trainable", "cross_validate",
           "precise_batchnorm", "run", "seed_everything", "train"]  # fmt: skip


def _run_fold(ctx: RunContext, plan: Plan, *, resume: bool) -> FoldResult:
    """Fit one fold: in closed form (``head``, ``stats``), else by the epoch loop."""
    if ctx.config.mode in CLIP_MODES:
        return closed_form.fit_fold(ctx, plan, resume=resume)
    return epochs.run_fold(ctx, plan, resume=resume)


def _features_name(ctx: RunContext) -> str:
    if ctx.config.mode == "head":
        return f"clip embedding of {ctx.config.base_model}"
    return f"embedding of {ctx.config.base_model}" if ctx.config.mode == "probe" else ctx.source.name


def _write_report(ctx: RunContext, results: list[FoldResult], table: str) -> None:
    """``RUN/report.txt``: the data, the model, each fold's split and best epoch, and the per-fold table."""
    c = ctx.config
    kind = "multi" if ctx.multilabel else "single"
    lines = [
        f"dataset {ctx.dataset.name} ({ctx.dataset.root}), task {ctx.task} ({kind}-label, "
        + f"{len(ctx.labels)} labels), {len(ctx.clips)} clips",
        f"mode {c.mode}, architecture {c.family}, features {_features_name(ctx)}, seed {c.seed}",
    ]
    for r in results:
        lines.append(f"fold {r.fold}: {r.split}; best epoch {r.best_epoch + 1} of {r.epochs_run}; "
                     f"evaluated on {r.evaluated_on}")  # fmt: skip
    lines += ["", table]
    (ctx.run_dir / "report.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def train(
    config: TrainConfig, dataset: Dataset, *, resume: bool = False, plugins: Plugins | None = None
) -> RunResult:
    """Train one model on the official split (or an artist-disjoint holdout) and save it.

    Parameters
    ----------
    config
        The run's settings (``folds`` is ignored; see :func:`cross_validate`).
    dataset
        A loaded dataset.
    resume
        Continue the run in ``config.run_dir`` (same settings; ``epochs`` may grow).
    plugins
        Plugin manager for extractors, decoders, pretrained backends and architectures.

    Returns
    -------
    RunResult
        ``model_path`` is ``RUN/model.safetensors``, ready for the plugin's ``model`` setting.
    """
    task = check_trainable(replace(config, folds=0), dataset)
    with run_folder(config, dataset, task, resume=resume) as (opened, run_dir):
        ctx = prepare(opened, dataset, task, run_dir, plugins=plugins, folds=0)
        plan = holdout_plan(opened, ctx.clips, ctx.groups, indicators(ctx.y, len(ctx.labels)))
        write_json(ctx.run_dir / "split.json", {"split": plan.split, "parts": plan.parts(ctx.clips)})
        result = _run_fold(ctx, plan, resume=resume)
        if not world().main:  # another worker of a distributed run: worker 0 writes the model and report
            return RunResult(ctx.run_dir, result.model_path, result, "", ctx.skipped)
        final = ctx.run_dir / "model.safetensors"
        finalise_model(result.model_path, final, result)
        table = M.format_fold_table([{"fold": plan.fold, **result.metrics}], architecture=ctx.config.row_name)
        _write_report(ctx, [result], table)
        return RunResult(ctx.run_dir, final, result, table, ctx.skipped)


def cross_validate(config: TrainConfig, dataset: Dataset, *, resume: bool = False, plugins: Plugins | None = None
                   ) -> CVResult:  # fmt: skip
    """k-fold cross-validation with artist-disjoint folds (``config.folds`` >= 3).

    Fold ``f`` is tested, fold ``f + 1`` validates (early stopping), the others train.
    Predefined folds (GTZAN's) are used when the dataset has exactly ``folds`` of them.

    Returns
    -------
    CVResult
        Per-fold results, their mean and standard deviation, and the per-fold table.
    """
    if config.folds < 3:
        raise ConfigError("cross_validate: set folds >= 3")
    task = check_trainable(config, dataset)
    with run_folder(config, dataset, task, resume=resume) as (opened, run_dir):
        ctx = prepare(opened, dataset, task, run_dir, plugins=plugins, folds=opened.folds)
        plans = fold_plans(opened, ctx.clips, ctx.groups, indicators(ctx.y, len(ctx.labels)))
        folds = {ctx.clips[int(i)].id: p.fold for p in plans for i in p.test}
        write_json(ctx.run_dir / "folds.json", {"split": plans[0].split.split(";")[0], "folds": folds})
        results = [_run_fold(ctx, plan, resume=resume) for plan in plans]
    if not world().main:
        return CVResult(ctx.run_dir, results, {}, {}, "", ctx.skipped)
    table = M.format_fold_table(
        [{"fold": r.fold, **r.metrics} for r in results], architecture=ctx.config.row_name
    )
    mean, std = mean_and_std(results)
    ctx.metrics.append({"phase": "summary", "folds": len(results), "mean": mean, "std": std})
    _write_report(ctx, results, table)
    return CVResult(ctx.run_dir, results, mean, std, table, ctx.skipped)


def run(config: TrainConfig, dataset: Dataset, *, resume: bool = False, plugins: Plugins | None = None
        ) -> RunResult | CVResult:  # fmt: skip
    """:func:`cross_validate` when ``config.folds >= 3``, else :func:`train`."""
    if config.folds >= 3:
        return cross_validate(config, dataset, resume=resume, plugins=plugins)
    return train(config, dataset, resume=resume, plugins=plugins)
