"""``beet mcbr-train``: train a model on a dataset folder, or on the library's own genres and moods.

The command turns beets items into the plain rows of the core's ``library`` dataset
(path, artist, genres, moods), so ``mcbr_core`` never sees beets. Labels the plugin
wrote itself (recorded in ``mcbr_genres`` / ``mcbr_moods``) are not the user's and
are left out unless ``--include-predicted`` is given. Heavy imports happen inside the
command function.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from beets import ui

from beetsplug.mcbr import settings
from beetsplug.mcbr.fields import MOOD_FIELD, field_values, users_values
from mcbr_core.errors import McbrError

if TYPE_CHECKING:
    from beets.library import Item, Library

    from beetsplug.mcbr import McbrPlugin

#: Flexible attributes holding what the plugin wrote (see ``beetsplug.mcbr.OURS``).
_OURS = {"genres": "mcbr_genres", "mood": "mcbr_moods"}
_OURS_SEP = "\u241f"


class TrainOptions(Protocol):
    """Options of ``beet mcbr-train``."""

    dataset: list[str] | None
    dataset_options: list[str]
    task: str | None
    mode: str | None
    arch: str | None
    arch_options: list[str]
    features: str | None
    feature_options: list[str]
    base_model: str | None
    epochs: int | None
    batch_size: int | None
    lr: float | None
    patience: int | None
    folds: int | None
    seed: int | None
    device: str | None
    workers: int | None
    out: str | None
    name: str | None
    resume: bool
    min_count: int | None
    max_seconds: float | None
    include_predicted: bool
    ray: str | None
    ray_workers: int
    gpus_per_worker: float


def _split(value: Any, separator: str) -> list[str]:
    if not value:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in str(value).split(separator.strip() or ";") if v.strip()]


def library_rows(
    items: list[Item], *, separator: str = "; ", include_predicted: bool = False
) -> list[dict[str, Any]]:
    """Items -> rows of the core's ``library`` dataset (``id, path, artist, genres, mood, album``)."""
    rows = []
    for item in items:
        if include_predicted:
            genres = field_values(item, "genres", separator)
            moods = field_values(item, MOOD_FIELD, separator)
        else:  # never learn from the plugin's own predictions
            genres = users_values(item, "genres", separator)
            moods = users_values(item, MOOD_FIELD, separator)
        if not genres and not moods:
            continue
        rows.append({
            "id": str(item.id),
            "path": str(item.filepath),
            "artist": item.get("artist") or item.get("albumartist") or None,
            "genres": genres,
            "mood": moods,
            "album": item.get("album") or "",
        })  # fmt: skip
    return rows


def _pairs(values: list[str] | None, what: str) -> dict[str, Any]:
    """``KEY=VALUE`` options, values read as in the config (``mcbr_core.options``)."""
    from mcbr_core.options import parse_options

    try:
        return parse_options(values or [], what=f"mcbr-train: {what}")
    except McbrError as exc:
        raise ui.UserError(str(exc)) from None


class _PrintHandler(logging.Handler):
    """Shows the training loop's lines on the console while the command runs, those the log bridge does not.

    The plugin bridges the core's log into its beets logger (``beetsplug.mcbr``), which
    shows INFO lines during a command: printing them here too showed each line twice.
    """

    def emit(self, record: logging.LogRecord) -> None:
        if not _bridge_shows(record.levelno):
            ui.print_(f"mcbr-train: {record.getMessage()}")


def _bridge_shows(level: int) -> bool:
    """Whether the plugin's log bridge shows the core's lines of this level."""
    from beetsplug.mcbr import _BeetsLogHandler

    return any(isinstance(h, _BeetsLogHandler) and h.plugin_log.isEnabledFor(level)
               for h in logging.getLogger("mcbr_core").handlers)  # fmt: skip


def train_command(plugin: McbrPlugin) -> ui.Subcommand:
    """``beet mcbr-train [QUERY]``: train a model (on the library's own labels by default)."""
    cmd = ui.Subcommand(
        "mcbr-train", help="train a genre or mood model on a dataset or on your own library's tags"
    )
    p = cmd.parser
    p.add_option("--dataset", nargs=2, metavar="KIND ROOT", default=None,
                 help="a registered dataset (fma, gtzan, webapi, emotify, 4q, library) and its folder; "
                      "default: the library items matching QUERY")  # fmt: skip
    p.add_option(
        "-O", "--dataset-option", dest="dataset_options", action="append", default=[], metavar="KEY=VALUE"
    )
    p.add_option("--task", help="genre, genres, mood, moods, or a dataset's own task")
    p.add_option(
        "--mode",
        choices=["net", "probe", "head", "stats"],
        help="network, per-patch linear probe, clip-level head, or statistics baseline",
    )
    p.add_option("--arch", help="architecture of a net (e.g. whitell_time, tower, xing)")
    p.add_option("-A", "--arch-option", dest="arch_options", action="append", default=[], metavar="KEY=VALUE")
    p.add_option("--features", help="feature extractor of a net (e.g. whitell-mel, tower-mel)")
    p.add_option(
        "-F", "--feature-option", dest="feature_options", action="append", default=[], metavar="KEY=VALUE"
    )
    p.add_option("--base-model", help="pretrained model a probe reads")
    p.add_option("--epochs", type="int")
    p.add_option("--batch-size", dest="batch_size", type="int")
    p.add_option("--lr", type="float")
    p.add_option("--patience", type="int", help="early stopping patience (0: off)")
    p.add_option("--folds", type="int", help="k >= 3: artist-disjoint k-fold cross-validation")
    p.add_option("--seed", type="int")
    p.add_option("--device", help="auto, cpu, cuda, mps")
    p.add_option("--workers", type="int")
    p.add_option("--out", help="folder of run folders")
    p.add_option("--name", help="run and model name")
    p.add_option("--resume", action="store_true", default=False, help="continue the run of the same name")
    p.add_option("--min-count", dest="min_count", type="int", help="library: drop labels on fewer items")
    p.add_option(
        "--max-seconds", dest="max_seconds", type="float", help="library: decode the middle N seconds"
    )
    p.add_option("--include-predicted", dest="include_predicted", action="store_true", default=False,
                 help="library: also learn labels the plugin wrote itself")  # fmt: skip
    p.add_option(
        "--ray", metavar="ADDRESS", help="train on this Ray cluster with --ray-workers DDP processes"
    )
    p.add_option("--ray-workers", dest="ray_workers", type="int", default=2, help="training processes [2]")
    p.add_option("--gpus-per-worker", dest="gpus_per_worker", type="float", default=0.0,
                 help="Ray GPUs per training process [0]")  # fmt: skip

    def func(lib: Library, opts: TrainOptions, args: list[str]) -> None:
        try:
            run_training(plugin, lib, opts, args)
        except McbrError as exc:
            raise ui.UserError(f"mcbr-train: {exc}") from None

    cmd.func = func
    return cmd


def run_training(plugin: McbrPlugin, lib: Library, opts: TrainOptions, args: list[str]) -> None:
    """Build the dataset and the config from options and ``mcbr.train``, then train."""
    from mcbr_core.training.datasets.builtin import load_dataset
    from mcbr_core.training.launch import train
    from mcbr_core.training.loop import CVResult, TrainConfig

    conf = settings.load_train(plugin.config)

    def pick(value: Any, key: str) -> Any:
        return value if value is not None else getattr(conf, key)

    dataset_options = _pairs(opts.dataset_options, "--dataset-option")
    if opts.dataset:
        kind, root = opts.dataset[0], Path(opts.dataset[1]).expanduser()
        dataset = load_dataset(kind, root, **dataset_options)
        max_seconds = pick(opts.max_seconds, "max_seconds") if kind == "library" else opts.max_seconds or 0.0
    else:
        kind, root = "library", Path(lib.path.decode() if isinstance(lib.path, bytes) else lib.path)
        rows = library_rows(
            list(lib.items(args)), separator=conf.separator, include_predicted=opts.include_predicted
        )
        if not rows:
            raise ui.UserError("mcbr-train: no items with genres or moods of their own match the query")
        dataset = load_dataset(kind, root, rows=rows, min_count=pick(opts.min_count, "min_count"),
                               **dataset_options)  # fmt: skip
        max_seconds = pick(opts.max_seconds, "max_seconds")
    ui.print_(dataset.summary())
    out = Path(opts.out).expanduser() if opts.out else conf.out
    task = pick(opts.task, "task")
    mode = pick(opts.mode, "mode")
    arch = pick(opts.arch, "arch")
    seed = pick(opts.seed, "seed")
    name = opts.name or f"{kind}-{task}-{arch if mode == 'net' else mode}-s{seed}"
    device = opts.device or conf.device
    config = TrainConfig(
        task=task,
        mode=mode,
        architecture=arch,
        arch_options=_pairs(opts.arch_options, "--arch-option"),
        features=pick(opts.features, "features"),
        feature_options=_pairs(opts.feature_options, "--feature-option"),
        base_model=pick(opts.base_model, "base_model"),
        epochs=pick(opts.epochs, "epochs"),
        batch_size=pick(opts.batch_size, "batch_size"),
        lr=pick(opts.lr, "lr"),
        patience=pick(opts.patience, "patience"),
        folds=pick(opts.folds, "folds"),
        seed=seed,
        device=device,
        num_workers=pick(opts.workers, "workers"),
        max_seconds=max_seconds or 0.0,
        cache_dir=conf.cache,
        run_dir=str(out / name),
        name=name,
        dataset={"kind": kind, "root": str(root), "options": {k: v for k, v in dataset_options.items()}},
    )
    handler = _PrintHandler(logging.INFO)  # each line once: through the log bridge, else printed
    loop_log = logging.getLogger("mcbr_core.training")
    loop_log.addHandler(handler)
    try:
        # DDP workers on a Ray cluster with --ray, else this process alone (beet is no torchrun worker)
        result = train(config, dataset, resume=opts.resume, ray_address=opts.ray, ray_workers=opts.ray_workers,
                       gpus_per_worker=opts.gpus_per_worker, env={})  # fmt: skip
    finally:
        loop_log.removeHandler(handler)
    ui.print_(result.table)
    if isinstance(result, CVResult):
        ui.print_(f"mcbr-train: run folder {result.run_dir} (per-fold models under checkpoints/)")
    else:
        ui.print_(f"mcbr-train: model {result.model_path}")
        from mcbr_core.models.clip_head import config_hint

        ui.print_(f"mcbr-train: to tag with it, set  {config_hint(result.model_path)}")
