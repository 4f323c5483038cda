"""The standalone ``mcbr`` command (click): models, datasets, train, eval, embed.

``mcbr eval`` is a contract other scripts rely on::

    mcbr eval --model MODEL --dataset KIND ROOT [--task genre|mood] --json OUT

It evaluates an already trained model (a shipped model name, a model file, or
``default``: the model the plugin uses by default for the task) on a dataset folder
without training on it, and writes at least ``accuracy, macro_f1, precision_at_1,
precision_at_3, confusion, knn_label_precision_at_10, artist_precision_at_5``, and
``n_in_training``: how many of the evaluated clips the model was trained on (by the
fingerprint in its card; ``null`` when the card has none). When that is not zero it
warns on stderr that the figures overstate accuracy.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from mcbr_core.errors import ConfigError, McbrError

log = logging.getLogger("mcbr_core.cli")


class _StderrHandler(logging.Handler):
    """Writes the core's log lines to whatever ``sys.stderr`` is at the time."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(f"mcbr: {record.getMessage()}\n")
        except Exception:
            self.handleError(record)


def _setup_logging(verbosity: int) -> None:
    """Show the core's log on stderr for the duration of the command."""
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    core = logging.getLogger("mcbr_core")
    handler = _StderrHandler(level)
    core.addHandler(handler)
    old_level = core.level
    core.setLevel(min(level, core.level or logging.WARNING))

    def restore() -> None:
        core.removeHandler(handler)
        core.setLevel(old_level)

    click.get_current_context().call_on_close(restore)


def _parse_options(pairs: Sequence[str], what: str) -> dict[str, Any]:
    """``["k=v", ...]`` -> dict, values read as in the config (``mcbr_core.options``)."""
    from mcbr_core.options import parse_options

    try:
        return parse_options(pairs, what=what)
    except ConfigError as exc:
        raise click.BadParameter(str(exc).removeprefix(f"{what}: "), param_hint=what) from None


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


def _tasks_of(card: dict[str, Any]) -> list[str]:
    """Tasks a model serves: the genre/mood kinds of its labels, and its heads' own names."""
    tasks: set[str] = set()
    for head in card["heads"]:
        tasks |= set(card.get("tag_kinds", {}).get(head, {}).values()) - {"other"}
        if head != "tags":  # musicnn's one head of mixed tags is not a task
            tasks.add(head)
    return sorted(tasks)


@click.group()
@click.version_option(package_name="beets-mcbr")
@click.option("-v", "--verbose", count=True, help="more log output")
@click.option("-q", "--quiet", is_flag=True, help="only warnings and errors")
def main(verbose: int, quiet: bool) -> None:
    """beets-mcbr without beets: list, train, evaluate and run models."""
    _setup_logging(-1 if quiet else verbose)


@main.command("models")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def models(as_json: bool) -> None:
    """List the shipped models, their tasks and heads."""
    from mcbr_core.models.checkpoint import read_card
    from mcbr_core.models.shipped import shipped_models
    from mcbr_core.settings import AnalysisSettings
    from mcbr_core.training.evaluate import default_model

    rows = []
    for name, path in shipped_models().items():
        card = read_card(path)
        tasks = _tasks_of(card)
        rows.append({"name": name, "id": card["id"], "tasks": tasks,
                     "default_for": [t for t in tasks if default_model(t) == name],
                     "default_model": name == AnalysisSettings().model,
                     "reads": card["features"].get("embedding_of", {}).get("model"),
                     "heads": {h: len(v) for h, v in card["heads"].items()},
                     "embedding_dim": card["embedding"]["dim"], "path": str(path)})  # fmt: skip
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        heads = ", ".join(f"{h} ({n} labels)" for h, n in r["heads"].items())
        marks = (["default model"] if r["default_model"] else []) + [
            f"default for {t}" for t in r["default_for"]
        ]
        default = f" [{', '.join(marks)}]" if marks else ""
        what = f"head on {r['reads']}'s clip embedding" if r["reads"] else f"{r['embedding_dim']}-d embedding"
        click.echo(f"{r['name']:<12} {r['id']:<22} tasks: {', '.join(r['tasks']) or '-'}{default}; "
                   f"{heads}; {what}")  # fmt: skip


@main.command("datasets")
@click.argument("kind", required=False)
@click.argument("root", required=False, type=click.Path(path_type=Path))
@click.option("-O", "--dataset-option", "dataset_options", multiple=True, metavar="KEY=VALUE")
def datasets(kind: str | None, root: Path | None, dataset_options: tuple[str, ...]) -> None:
    """List the registered datasets, or summarise one folder (KIND ROOT)."""
    from mcbr_core.plugins import get_plugins
    from mcbr_core.training.datasets.builtin import load_dataset

    if kind is None:
        for name in get_plugins().registry("dataset").names():
            click.echo(name)
        return
    if root is None:
        raise click.UsageError("give the dataset folder: mcbr datasets KIND ROOT")
    try:
        ds = load_dataset(kind, root, **_parse_options(dataset_options, "--dataset-option"))
    except McbrError as exc:
        raise _fail(exc) from None
    click.echo(ds.summary())
    for cid, reason in ds.skipped[:10]:
        click.echo(f"  skipped {cid}: {reason}")


_DATASET = click.option("--dataset", "dataset", nargs=2, required=True, metavar="KIND ROOT",
                        type=(str, click.Path(path_type=Path)), help="registered dataset name and its folder")  # fmt: skip
_DATASET_OPTIONS = click.option("-O", "--dataset-option", "dataset_options", multiple=True, metavar="KEY=VALUE",
                                help="loader option, e.g. subset=medium (repeatable)")  # fmt: skip


@main.command("train")
@_DATASET
@_DATASET_OPTIONS
@click.option("--config", "config_file", type=click.Path(exists=True, path_type=Path),
              help="JSON file of TrainConfig fields (options given here override it)")  # fmt: skip
@click.option("--task", help="dataset task: genre, mood, genres, moods, quadrant, ... [genre]")
@click.option(
    "--mode",
    type=click.Choice(["net", "probe", "head", "stats"]),
    help="network, per-patch linear probe, clip-level head on a pretrained embedding, or stats baseline",
)
@click.option("--arch", "architecture", help="architecture (net mode) [whitell_time]")
@click.option("-A", "--arch-option", "arch_options", multiple=True, metavar="KEY=VALUE")
@click.option("--features", help="feature extractor (net mode) [whitell-mel]")
@click.option("-F", "--feature-option", "feature_options", multiple=True, metavar="KEY=VALUE")
@click.option("--base-model", help="pretrained model a probe reads [msd-musicnn]")
@click.option("--epochs", type=int)
@click.option("--batch-size", type=int)
@click.option("--lr", type=float)
@click.option("--weight-decay", type=float)
@click.option("--patience", type=int, help="early stopping patience in epochs (0: off)")
@click.option("--folds", type=int, help="k >= 3: artist-disjoint k-fold cross-validation")
@click.option("--seed", type=int)
@click.option("--patch-seconds", type=float)
@click.option("--max-seconds", type=float, help="decode only the middle of each file")
@click.option("--device", help="auto, cpu, cuda, cuda:N, mps")
@click.option("--amp/--no-amp", default=None, help="mixed precision on CUDA")
@click.option("--workers", "num_workers", type=int, help="DataLoader and feature workers")
@click.option("--cache", "cache_dir", type=click.Path(path_type=Path), help="feature cache folder")
@click.option("--out", "run_dir", type=click.Path(path_type=Path), help="run folder")
@click.option("--name", help="model name (default: the run folder's name)")
@click.option("--resume", is_flag=True, help="continue the run in --out")
@click.option("--ray", "ray_address", metavar="ADDRESS",
              help="train on this Ray cluster (HOST:PORT, auto): --ray-workers DDP processes")  # fmt: skip
@click.option("--ray-workers", type=int, default=2, show_default=True, help="training processes (with --ray)")
@click.option("--cpus-per-worker", type=float, default=1.0, show_default=True, help="Ray CPUs per worker")
@click.option("--gpus-per-worker", type=float, default=0.0, show_default=True,
              help="Ray GPUs per training process (1 to train on GPUs)")  # fmt: skip
def train_cmd(dataset: tuple[str, Path], dataset_options: tuple[str, ...], config_file: Path | None,
              arch_options: tuple[str, ...], feature_options: tuple[str, ...], resume: bool, ray_address: str | None,
              ray_workers: int, cpus_per_worker: float, gpus_per_worker: float, **given: Any) -> None:  # fmt: skip
    """Train a model on a dataset (or cross-validate it with --folds K).

    Under torchrun (torchrun --nproc-per-node N -m mcbr_core.cli train ...) each
    process is one DDP worker; --ray ADDRESS starts the workers on a Ray cluster.
    Worker 0 writes the run folder (docs/training.md, "Distributed training").
    """
    from mcbr_core.training import distributed
    from mcbr_core.training.datasets.builtin import load_dataset
    from mcbr_core.training.launch import train
    from mcbr_core.training.loop import CVResult, TrainConfig

    kind, root = dataset
    data: dict[str, Any] = json.loads(config_file.read_text()) if config_file else {}
    data.update({k: (str(v) if isinstance(v, Path) else v) for k, v in given.items() if v is not None})
    if arch_options:
        data["arch_options"] = {
            **data.get("arch_options", {}),
            **_parse_options(arch_options, "--arch-option"),
        }
    if feature_options:
        data["feature_options"] = {**data.get("feature_options", {}),
                                   **_parse_options(feature_options, "--feature-option")}  # fmt: skip
    options = _parse_options(dataset_options, "--dataset-option")
    data["dataset"] = {"kind": kind, "root": str(root), "options": options}
    try:
        config = TrainConfig.from_dict(data)
        if distributed.from_env().rank:  # another torchrun worker: worker 0 logs
            logging.getLogger("mcbr_core").setLevel(logging.WARNING)
        ds = load_dataset(kind, root, **options)
        # on a Ray cluster with --ray, else one process or one of torchrun's (the environment says which)
        result = train(config, ds, resume=resume, ray_address=ray_address, ray_workers=ray_workers,
                       cpus_per_worker=cpus_per_worker, gpus_per_worker=gpus_per_worker)  # fmt: skip
    except McbrError as exc:
        raise _fail(exc) from None
    if not result.table:  # another worker of a distributed run: worker 0 reports
        return
    click.echo(result.table)
    if isinstance(result, CVResult):
        click.echo(f"run folder: {result.run_dir} (per-fold models under checkpoints/)")
    else:
        click.echo(f"model: {result.model_path}")
        from mcbr_core.models.clip_head import config_hint

        click.echo(f"use it in beets with  {config_hint(result.model_path)}")


# -- eval ------------------------------------------------------------------------------


@main.command("eval")
@click.option("--model", default="default", show_default=True,
              help="shipped model name, model file, or 'default' (the plugin's default for the task)")  # fmt: skip
@_DATASET
@_DATASET_OPTIONS
@click.option("--task", default="genre", show_default=True, help="genre, mood, or any task of the dataset")
@click.option("--split", type=click.Choice(["all", "train", "val", "test"]), default="all", show_default=True)
@click.option(
    "--json", "json_out", type=click.Path(path_type=Path), help="write the metrics here ('-': stdout)"
)
@click.option("--device", default="auto", show_default=True)
@click.option("--label-map", type=click.Path(exists=True, path_type=Path),
              help="JSON {model label: dataset label} for names that differ")  # fmt: skip
@click.option("--limit", type=int, default=0, help="evaluate at most N clips")
@click.option(
    "--max-patches", type=int, default=None, help="analysis patch budget per track (plugin default: 16)"
)
@click.option(
    "--window-patches", type=int, default=None, help="patches per analysis window (plugin default: 4)"
)
def eval_cmd(model: str, dataset: tuple[str, Path], dataset_options: tuple[str, ...], task: str, split: str,
             json_out: Path | None, device: str, label_map: Path | None, limit: int, max_patches: int | None,
             window_patches: int | None) -> None:  # fmt: skip
    """Evaluate a trained model on a dataset folder (no training on it)."""
    from mcbr_core.training.evaluate import evaluate_model
    from mcbr_core.training.metrics import format_fold_table

    kind, root = dataset
    try:
        result = evaluate_model(
            model, kind, root, task=task, options=_parse_options(dataset_options, "--dataset-option"),
            split=None if split == "all" else split, device=device, limit=limit,
            label_map=json.loads(label_map.read_text()) if label_map else None,
            max_patches=max_patches, window_patches=window_patches,
        )  # fmt: skip
    except McbrError as exc:
        raise _fail(exc) from None
    if result["n_in_training"]:
        click.echo(f"mcbr eval: {result['n_in_training']} of {result['n']} clips were in this model's training data; "
                   "these figures overstate accuracy", err=True)  # fmt: skip
    text = json.dumps(result, indent=2)
    if json_out is not None and str(json_out) == "-":
        click.echo(text)
        return
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(text + "\n", encoding="utf-8")
    click.echo(
        f"{result['model']} on {kind} {root} ({result['task']}, {result['n']} clips, {result['n_failed']} failed)"
    )
    click.echo(format_fold_table([{"fold": "all", **result}], architecture=result["model_id"]))


# -- embed -----------------------------------------------------------------------------


def _audio_files(folder: Path, recursive: bool) -> list[Path]:
    from mcbr_core.plugins import get_plugins
    from mcbr_core.training.datasets.base import AUDIO_EXTENSIONS

    suffixes = set(AUDIO_EXTENSIONS)
    registry = get_plugins().registry("decoder")
    for name in registry.names():
        suffixes |= set(getattr(registry.get(name), "extensions", ()))
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in suffixes)


@main.command("embed")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--model", default="default", show_default=True, help="shipped model name, model file, or 'default'"
)
@click.option("-o", "--out", type=click.Path(path_type=Path), default=Path("embeddings.npy"), show_default=True,
              help="embeddings (N, D) as .npy; a .json beside it lists the files")  # fmt: skip
@click.option("--recursive/--no-recursive", default=True, show_default=True)
@click.option("--device", default="auto", show_default=True)
def embed_cmd(folder: Path, model: str, out: Path, recursive: bool, device: str) -> None:
    """Write the embeddings of a folder of audio files to .npy (+ .json).

    A clip head (``mcbr-mood``, ``mcbr-genre``, ``--mode head`` models) has no embedding
    of its own: it reads its base model's clip embedding, which is what is written and
    what ``model_id`` names; ``top_scores`` are the head's.
    """
    import numpy as np

    from mcbr_core.analysis import Analyzer
    from mcbr_core.models.checkpoint import read_card
    from mcbr_core.models.clip_head import ClipHead, is_clip_head
    from mcbr_core.models.shipped import resolve_model
    from mcbr_core.settings import AnalysisSettings

    name = (
        AnalysisSettings().model if model == "default" else model
    )  # the model whose embedding the plugin stores
    head = None
    try:
        model_path = resolve_model(name)
        card = read_card(model_path)
        if is_clip_head(card):  # embed with the model it reads, as the plugin does
            head = ClipHead.load(model_path)
            model_path = resolve_model(
                str(card["features"]["embedding_of"]["model"]), base_dir=model_path.parent
            )
        analyzer = Analyzer(AnalysisSettings(model=str(model_path), device=device))
        if head is not None and analyzer.model_id != head.base_id:
            raise McbrError(
                f"{name} reads the embedding of {head.base_id}, but {model_path} is {analyzer.model_id}"
            )
    except McbrError as exc:
        raise _fail(exc) from None
    files = _audio_files(folder, recursive)
    if not files:
        raise click.ClickException(f"no audio files in {folder}")
    vectors, names, failed, scores = [], [], {}, []
    for path in files:
        try:
            a = analyzer.analyze(path)
        except (McbrError, OSError, ValueError) as exc:
            failed[str(path.relative_to(folder))] = str(exc)
            continue
        vectors.append(a.embedding)
        names.append(str(path.relative_to(folder)))
        tags = {head.head: head.scores(a.embedding)} if head is not None else a.scores
        scores.append({h: {k: round(v, 4) for k, v in sorted(s.items(), key=lambda kv: -kv[1])[:5]}
                       for h, s in tags.items()})  # fmt: skip
    if not vectors:
        raise click.ClickException(f"none of the {len(files)} files could be analysed")
    out = out.with_suffix(".npy")
    out.parent.mkdir(parents=True, exist_ok=True)
    matrix = np.stack(vectors).astype(np.float32)  # (N, D)
    np.save(out, matrix)
    meta = {"model": name, "model_id": analyzer.model_id, "head_id": head.model_id if head is not None else None,
            "dim": int(matrix.shape[1]), "metric": analyzer.backend.metric, "folder": str(folder), "files": names,
            "top_scores": scores, "failed": failed}  # fmt: skip
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    click.echo(
        f"{len(names)} embeddings ({matrix.shape[1]}-d, {analyzer.model_id}) -> {out}; {len(failed)} failed"
    )


# -- analyze ---------------------------------------------------------------------------


class _Progress:
    """A log line every 30 s of a long run: files done, rate and the time left."""

    def __init__(self, every: float = 30.0) -> None:
        self.every = every
        self.started = self.last = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < self.every or done == total:
            return
        self.last = now
        rate = done / (now - self.started)
        left = round((total - done) / rate) if rate else 0
        log.info("%d/%d files, %.2f tracks/s, %d:%02d:%02d left", done, total, rate, left // 3600, left // 60 % 60,
                 left % 60)  # fmt: skip


@main.command("analyze")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="the catalogue file (an embedding store keyed by path; created if missing)")  # fmt: skip
@click.option("--model", default=None, help="shipped model name or model file [mcbr-fusion]")
@click.option("--device", default="auto", show_default=True)
@click.option("-P", "--plugin", "plugins", multiple=True, metavar="MODULE",
              help="importable module to register as an mcbr plugin (repeatable)")  # fmt: skip
@click.option("--workers", default="auto", show_default=True, help="local worker processes (without --ray)")
@click.option("--timeout", type=float, default=120.0, show_default=True, help="seconds one file may take")
@click.option(
    "--memory-mb", type=int, default=2048, show_default=True, help="memory ceiling per analysis process"
)
@click.option("--ray", "ray_address", metavar="ADDRESS", help="analyse on this Ray cluster (HOST:PORT, auto)")
@click.option("--batch-size", type=int, default=8, show_default=True, help="files per Ray task")
@click.option("--num-cpus", type=float, default=1.0, show_default=True, help="CPUs per Ray task")
@click.option(
    "--num-gpus", default="auto", show_default=True, help="GPUs per Ray task (auto: a share of the cluster's)"
)
@click.option("--path-map", "path_map", multiple=True, metavar="HOST=WORKER",
              help="where Ray workers find this host's folder (repeatable)")  # fmt: skip
@click.option("-f", "--force", is_flag=True, help="analyse files the catalogue has already")
@click.option("--recursive/--no-recursive", default=True, show_default=True)
def analyze_cmd(folder: Path, out: Path, model: str | None, device: str, plugins: tuple[str, ...], workers: str,
                timeout: float, memory_mb: int, ray_address: str | None, batch_size: int, num_cpus: float,
                num_gpus: str, path_map: tuple[str, ...], force: bool, recursive: bool) -> None:  # fmt: skip
    """Analyse a folder of audio files outside beets into a catalogue (-o FILE).

    Rows are keyed by path and mtime; `beet mcbr --adopt FILE` gives a library's
    items the rows of their files without analysing them again (docs/scale.md).
    """
    from mcbr_core.catalogue import analyze_folder
    from mcbr_core.settings import AnalysisSettings, PoolSettings, RaySettings
    from mcbr_core.workers import auto_workers

    mapping: dict[str, str] = {}
    for pair in path_map:
        host, sep, worker = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"expected HOST=WORKER, got {pair!r}", param_hint="--path-map")
        mapping[host] = worker
    try:
        gpus: float | str = num_gpus if num_gpus == "auto" else float(num_gpus)
    except ValueError:
        raise click.BadParameter(
            f"expected auto or a number, got {num_gpus!r}", param_hint="--num-gpus"
        ) from None
    try:
        settings = AnalysisSettings(
            **({"model": model} if model else {}), device=device, extra_plugins=plugins
        )  # fmt: skip
        pool = PoolSettings(workers=auto_workers(workers), timeout=timeout, memory_mb=memory_mb)
        ray = RaySettings(address=ray_address or "", batch_size=batch_size, num_cpus=num_cpus, num_gpus=gpus,
                          path_map=mapping) if ray_address else None  # fmt: skip
        result = analyze_folder(folder, out, settings=settings, pool=pool, ray=ray, force=force, recursive=recursive,
                                progress=_Progress())  # fmt: skip
    except McbrError as exc:
        raise _fail(exc) from None
    except ValueError as exc:  # --workers abc
        raise click.BadParameter(str(exc), param_hint="--workers") from None
    rate = result.analysed / result.seconds if result.seconds else 0.0
    click.echo(f"analysed {result.analysed} ({rate:.2f} tracks/s), skipped {result.skipped} up to date, "
               f"{len(result.failed)} failed -> {out}")  # fmt: skip


if __name__ == "__main__":  # python -m mcbr_core.cli (torchrun -m mcbr_core.cli train ...)
    main()
