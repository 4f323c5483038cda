"""The engine a host (the beets plugin, the ``mcbr`` CLI) drives.

It owns the lazily created heavy parts: the analyzer (torch, weights), the
embedding store and the neighbour search. Nothing heavy is imported until one
of them is first used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcbr_core import tagging
from mcbr_core.errors import ConfigError
from mcbr_core.models.checkpoint import read_card
from mcbr_core.models.shipped import resolve_model
from mcbr_core.settings import AnalysisSettings, IndexSettings, PoolSettings, RaySettings, TagSettings

if TYPE_CHECKING:
    import numpy as np

    from mcbr_core.analysis import Analysis
    from mcbr_core.catalogue import AdoptingPool
    from mcbr_core.models.clip_head import ClipHead
    from mcbr_core.plugins import Plugins
    from mcbr_core.ray_pool import RayAnalysisPool
    from mcbr_core.similarity import Neighbours
    from mcbr_core.store.embeddings import EmbeddingStore
    from mcbr_core.workers import AnalysisPool


@dataclass(frozen=True)
class Tags:
    """What the model says about one track, ready for a tagger.

    Attributes
    ----------
    genres, moods : list[str]
        Names to write, best first.
    scores : dict[str, float]
        ``mcbr_<kind>_<label>`` score attributes, and the continuous attributes
        (``mcbr_arousal``, ``mcbr_valence``) in [0, 1] where heads give them.
    """

    genres: list[str]
    moods: list[str]
    scores: dict[str, float] = field(default_factory=dict)


class Engine:
    """Analysis, tagging, storage and search behind one object.

    Parameters
    ----------
    analysis, tags, index
        Validated settings.
    pool
        Worker processes for analysis (default: analyse in-process).
    store_path
        SQLite embedding store.
    index_dir
        Folder for index files.
    base_dir
        Folder relative model paths start from.
    plugins
        Plugin manager (default: the process-wide one, created on first use).
    owner
        The library the store belongs to (``store.ownership.library_identity``):
        claimed on first use; a store of another library is refused.
    ray
        A Ray cluster to analyse on instead of local worker processes (when its
        ``address`` is set); see ``use_ray``.
    catalogue
        A catalogue (``mcbr analyze``) whose analyses of unchanged files are adopted
        instead of analysing them again; see ``adopt_from``.
    """

    def __init__(
        self,
        *,
        analysis: AnalysisSettings,
        tags: TagSettings,
        index: IndexSettings,
        store_path: Path,
        index_dir: Path,
        base_dir: Path | None = None,
        plugins: Plugins | None = None,
        pool: PoolSettings | None = None,
        owner: str | None = None,
        ray: RaySettings | None = None,
        catalogue: Path | None = None,
    ) -> None:
        self.analysis_settings = analysis
        self.pool_settings = pool or PoolSettings(workers=0)
        self.tag_settings = tags
        self.index_settings = index
        self.store_path = Path(store_path)
        self.index_dir = Path(index_dir)
        self.base_dir = base_dir
        self._plugins = plugins
        self.owner = owner
        self.dirty = False  # the store changed since the index was last brought up to date
        self.ray_settings = ray
        self.catalogue = catalogue

    @property
    def plugins(self) -> Plugins:
        """The plugin manager."""
        if self._plugins is None:
            from mcbr_core.plugins import plugins_with

            self._plugins = plugins_with(self.analysis_settings.extra_plugins)
        return self._plugins

    @cached_property
    def card(self) -> dict[str, Any]:
        """The configured model's card (read from the file header; no torch)."""
        return read_card(resolve_model(self.analysis_settings.model, base_dir=self.base_dir))

    @property
    def model_id(self) -> str:
        """Id of the configured model, stored with every embedding."""
        return str(self.card["id"])

    @property
    def feature_version(self) -> str:
        """Feature version the configured model expects."""
        return str(self.card["features"]["version"])

    @cached_property
    def sources(self) -> dict[str, tuple[Path, dict[str, Any]]]:
        """Kind -> (clip-head file, card) for the kinds a head tags (cards only; no torch)."""
        from mcbr_core.models.clip_head import resolve_sources

        wanted = {kind: getattr(self.tag_settings, kind).source for kind in tagging.KINDS}
        return resolve_sources(wanted, self.card, base_dir=self.base_dir)

    @cached_property
    def scales(self) -> dict[str, tuple[Path, str, dict[str, Any]]]:
        """Attribute (``mcbr_arousal``) -> (head file, label, card): the continuous attributes this model gets."""
        from mcbr_core.models.clip_head import resolve_scales

        return resolve_scales(self.card)

    @cached_property
    def thresholds(self) -> dict[str, dict[str, float]]:
        """Kind -> label -> the head card's threshold for it (used with ``threshold: auto``)."""
        return {kind: dict(card.get("thresholds", {})) for kind, (_, card) in self.sources.items()}

    @property
    def heads_id(self) -> str:
        """The clip heads in use, as ``kind=id`` and ``attribute=id`` pairs (empty: the model's own tags only)."""
        pairs = [(kind, card["id"]) for kind, (_, card) in self.sources.items()]
        pairs += [(name, card["id"]) for name, (_, _, card) in self.scales.items()]
        return ",".join(f"{key}={head_id}" for key, head_id in sorted(pairs))

    @cached_property
    def heads(self) -> dict[str, ClipHead]:
        """Kind or attribute -> loaded clip head (numpy; loaded on first use)."""
        from mcbr_core.models.clip_head import ClipHead

        heads = {kind: ClipHead.load(path) for kind, (path, _) in self.sources.items()}
        heads.update({name: ClipHead.load(path) for name, (path, _, _) in self.scales.items()})
        return heads

    def score_field_names(self) -> list[str]:
        """Score attributes the configured model and clip heads produce."""
        names = tagging.score_field_names(self.card["heads"], self.card.get("tag_kinds", {}))
        names = [n for n in names if not any(n.startswith(f"mcbr_{kind}_") for kind in self.sources)]
        for kind, (_, card) in self.sources.items():
            heads = card["heads"]
            kinds = {head: dict.fromkeys(labels, kind) for head, labels in heads.items()}
            names += tagging.score_field_names(heads, kinds)
        return sorted({*names, *self.scales, *self._subgenres})

    @cached_property
    def pool(self) -> AnalysisPool | RayAnalysisPool | AdoptingPool:
        """Worker pool for analysing many files (started on first use): local, or on a Ray cluster.

        With a ``catalogue``, files it analysed (unchanged since) adopt its analyses first.
        """
        pool: AnalysisPool | RayAnalysisPool
        if self.ray_settings is not None and self.ray_settings.address:
            from mcbr_core.ray_pool import RayAnalysisPool  # imports Ray only when it analyses

            pool = RayAnalysisPool(
                self.analysis_settings, self.pool_settings, self.ray_settings, base_dir=self.base_dir
            )
        else:
            from mcbr_core.workers import AnalysisPool

            pool = AnalysisPool(self.analysis_settings, self.pool_settings, base_dir=self.base_dir)
        if self.catalogue is None:
            return pool
        from mcbr_core.catalogue import AdoptingPool

        return AdoptingPool(
            pool, self.catalogue, model_id=self.model_id, feature_version=self.feature_version
        )

    def use_ray(self, ray: RaySettings | None) -> None:
        """Analyse on this Ray cluster from now on (``None``, or no address: local workers)."""
        self._drop_pool()
        self.ray_settings = ray

    def adopt_from(self, catalogue: Path | None) -> None:
        """Adopt the analyses of this catalogue (``mcbr analyze``) from now on (``None``: none)."""
        self._drop_pool()
        self.catalogue = catalogue

    def _drop_pool(self) -> None:
        pool = self.__dict__.pop("pool", None)
        if pool is not None:
            pool.close()

    @cached_property
    def store(self) -> EmbeddingStore:
        """The embedding store (opened on first use)."""
        from mcbr_core.store.embeddings import EmbeddingStore
        from mcbr_core.store.ownership import check_owner

        store = EmbeddingStore(self.store_path)
        if self.owner is not None:
            try:
                check_owner(store, self.owner)
            except ConfigError:
                store.close()
                raise
        return store

    @cached_property
    def neighbours(self) -> Neighbours:
        """Neighbour search over the configured model's embeddings."""
        from mcbr_core.similarity import Neighbours

        return Neighbours(
            self.store,
            model_id=self.model_id,
            folder=self.index_dir,
            settings=self.index_settings,
            metric=self.card["embedding"].get("metric", "angular"),
            plugins=self.plugins,
        )

    def _score_labels(self) -> dict[str, tagging.Scored]:
        """Score attribute -> its kind and label, for every label the model and heads score."""
        out: dict[str, tagging.Scored] = {}
        kinds = self.card.get("tag_kinds", {})
        for head, labels in self.card["heads"].items():
            for label in labels:
                kind = tagging.kind_of(head, label, kinds)
                if kind in tagging.KINDS and kind not in self.sources:
                    out[f"mcbr_{kind}_{tagging.slug(label)}"] = tagging.Scored(kind, label, 0.0)
        for kind, (_, card) in self.sources.items():
            for labels in card["heads"].values():
                for label in labels:
                    out[f"mcbr_{kind}_{tagging.slug(label)}"] = tagging.Scored(kind, label, 0.0)
        return out

    @cached_property
    def _subgenres(self) -> dict[str, tuple[str, tuple[tuple[str, str], ...]]]:
        """Score attribute -> (tree name, the model's (head, label) pairs naming it), for sub-genres.

        Only with a genre head (it names the families) and ``genre.specific`` set: the
        model's own genre tags that sit below a family in the genre tree.
        """
        if "genre" not in self.sources or self.tag_settings.genre.specific is None:
            return {}
        rules = self.tag_settings.genres
        kinds = self.card.get("tag_kinds", {})
        found: dict[str, list[tuple[str, str]]] = {}
        for head, labels in self.card["heads"].items():
            for label in labels:
                if tagging.kind_of(head, label, kinds) != "genre":
                    continue
                name = rules.tree_name(label)
                if name and rules.depth(name) and rules.allowed(name):
                    found.setdefault(name, []).append((head, label))
        return {f"mcbr_genre_{tagging.slug(n)}": (n, tuple(pairs)) for n, pairs in sorted(found.items())}

    @property
    def subgenre_fields(self) -> tuple[str, ...]:
        """The sub-genre score attributes: what a host keeps of a track for tagging it again from its embedding."""
        return tuple(self._subgenres)

    def _subgenre_scores(
        self, scores: Mapping[str, Mapping[str, float]], stored: Mapping[str, float]
    ) -> list[tagging.Scored]:
        """Sub-genre scores: the best of the model's tags naming each (``scores``), else ``stored`` attributes."""
        out = []
        for attr, (name, pairs) in self._subgenres.items():
            values = [scores[h][lab] for h, lab in pairs if lab in scores.get(h, {})]
            if values:
                out.append(tagging.Scored("genre", name, float(max(values))))
            elif attr in stored:
                out.append(tagging.Scored("genre", name, float(stored[attr])))
        return out

    def tags_of_scores(self, scores: list[dict[str, float]]) -> Tags:
        """One set of genres and moods from several tracks' score attributes (an album's consensus).

        Parameters
        ----------
        scores
            Per track: ``mcbr_<kind>_<label>`` -> score. A label's score is its mean
            over the tracks that have it.
        """
        labels = self._score_labels()
        sums: dict[str, list[float]] = {}
        for track in scores:
            for name, value in track.items():
                if name in labels or name in self._subgenres:
                    sums.setdefault(name, []).append(float(value))
        means = {name: sum(values) / len(values) for name, values in sums.items()}
        scored = [tagging.Scored(labels[n].kind, labels[n].label, v) for n, v in means.items() if n in labels]
        specific = self._subgenre_scores({}, means)
        return Tags(
            genres=self._choose(scored, "genre", specific),
            moods=self._choose(scored, "mood"),
            scores={**tagging.score_fields(scored), **tagging.score_fields(specific)},
        )

    def _choose(
        self, scored: list[tagging.Scored], kind: str, specific: Sequence[tagging.Scored] = ()
    ) -> list[str]:
        return tagging.choose(scored, kind, self.tag_settings, thresholds=self.thresholds.get(kind),
                              specific=specific, tree_names=self._tree_names)  # fmt: skip

    @cached_property
    def _tree_names(self) -> dict[str, str]:
        """The genre head's labels whose name in the tree differs (its card's ``genre_tree``)."""
        if "genre" not in self.sources:
            return {}
        tree = self.sources["genre"][1].get("genre_tree", {})
        return {label: str(v["tree"]) for label, v in tree.items() if v.get("tree") and v["tree"] != label}

    def tags(self, analysis: Analysis) -> Tags:
        """Genres, moods and score attributes from an analysis."""
        return self._tags(analysis.scores, analysis.embedding)

    @property
    def can_tag_from_embedding(self) -> bool:
        """Whether clip heads tag every kind, so a stored embedding is enough to tag an item again."""
        return set(self.sources) >= set(tagging.KINDS)

    def tags_of_embedding(self, embedding: np.ndarray, stored: Mapping[str, float] | None = None) -> Tags:
        """Genres, moods and scores from a stored clip embedding ``[shape=(D,)]``.

        Parameters
        ----------
        embedding
            The track's stored clip embedding.
        stored
            The track's score attributes from its last analysis: sub-genre scores come
            from the model's tags of the audio, so they are kept from there.

        Raises
        ------
        ConfigError
            If a kind takes the model's own tags (``source: model``): those need the audio.
        """
        if not self.can_tag_from_embedding:
            raise ConfigError("tagging from a stored embedding needs a clip head for every kind")
        return self._tags({}, embedding, stored or {})

    def _tags(
        self,
        scores: Mapping[str, Mapping[str, float]],
        embedding: np.ndarray,
        stored: Mapping[str, float] | None = None,
    ) -> Tags:
        scored = tagging.scored_labels(scores, self.card.get("tag_kinds", {}))
        specific = self._subgenre_scores(scores, stored or {})
        if self.sources:  # a clip head replaces the model's own tags of its kind
            scored = [s for s in scored if s.kind not in self.sources]
            for kind in self.sources:
                scored += [
                    tagging.Scored(kind, label, p) for label, p in self.heads[kind].scores(embedding).items()
                ]
        scales = {
            name: round(self.heads[name].scores(embedding)[label], 4)
            for name, (_, label, _) in self.scales.items()
        }
        return Tags(
            genres=self._choose(scored, "genre", specific),
            moods=self._choose(scored, "mood"),
            scores={**tagging.score_fields(scored), **tagging.score_fields(specific), **scales},
        )

    # -- the store, through the engine: it knows when the index needs a rebuild ----------

    def record(self, item_id: int, analysis: Analysis, *, path: bytes | None, mtime: float | None) -> None:
        """Store an analysis' embedding for ``item_id`` (with the file's path and mtime)."""
        self.store.put(
            item_id,
            analysis.embedding,
            model_id=analysis.model_id,
            feature_version=analysis.feature_version,
            path=path,
            mtime=mtime,
        )
        self.dirty = True

    def file_moved(self, item_id: int, path: bytes, mtime: float | None = None) -> None:
        """Record a track's new path (and mtime, after a tag write): the embedding stays valid."""
        if self.store_path.exists() and self.store.row(item_id, self.model_id) is not None:
            self.store.set_path(item_id, path, mtime)

    def forget(self, item_ids: list[int], model_id: str | None = None) -> int:
        """Delete the embeddings of these items (of every model unless one is named); returns rows deleted."""
        if not self.store_path.exists():
            return 0
        removed = self.store.remove(item_ids, model_id=model_id)
        self.dirty = self.dirty or bool(removed)
        return removed

    def refresh_index(self, *, rebuild: bool = False) -> None:
        """Bring the index up to date with the store (``rebuild``: from scratch)."""
        self.neighbours.index(rebuild=rebuild)
        self.dirty = False

    def close(self) -> None:
        """Stop workers and close the store if they were started; both restart on next use."""
        pool = self.__dict__.pop("pool", None)
        if pool is not None:
            pool.close()
        self.__dict__.pop("neighbours", None)
        store = self.__dict__.pop("store", None)
        if store is not None:
            store.close()
