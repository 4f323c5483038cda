#!/usr/bin/env python3
"""Does fine-tuning the top of msd-musicnn beat the clip head? A CPU-sized pilot (issue 3).

Usage::

    python bench/finetune_top.py ../shared/data 4q mood
    python bench/finetune_top.py ../shared/data emotify genre

Whole clips in non-overlapping 3-s patches. The front-end and the first mid-end layer
stay frozen and are run once (cached in ``.cache/finetune-top/``); the two residual
mid-end layers, the pooling BatchNorm, the 200-d dense layer and a new output layer
are trained on patches with the clip's label (AdamW, pretrained layers at a tenth of
the head's learning rate, dropout 0.5 before the output), and a clip's prediction is
the mean of its patches' probabilities. Early stopping on the validation fold's
macro-F1. The baseline is the clip head's protocol (L2 logistic regression on the
clip-mean embedding, C chosen on the validation fold, refitted on training +
validation) on the same patches. Same 5 artist-disjoint folds as ``mcbr train --folds 5``.
Full fine-tuning of musicnn (front-end included) needs a GPU and is not tried here.
"""

from __future__ import annotations

import copy
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
EPOCHS, PATIENCE, LR, BATCH = 15, 4, 1e-3, 32


def extract(net, kind: str, root: Path, task: str, out: Path) -> None:
    import torch

    from mcbr_core.audio.decode import PyAVDecoder, SoundfileDecoder, load_audio
    from mcbr_core.features.musicnn_mel import MusicnnMel
    from mcbr_core.features.patches import patches
    from mcbr_core.models.musicnn import pool_max_mean
    from mcbr_core.training.datasets.builtin import load_dataset
    from mcbr_core.training.splits import group_key

    ds = load_dataset(kind, root)
    mel, decoders = MusicnnMel(), [SoundfileDecoder(), PyAVDecoder()]
    m1s, fepools, owner, labels, groups = [], [], [], [], []
    t0 = time.perf_counter()
    for i, clip in enumerate(ds.labelled(task)):
        try:
            y = load_audio(clip.path, sr=16000, decoders=decoders)
        except Exception as exc:
            print(f"{clip.path}: {exc}")
            continue
        x = torch.from_numpy(patches(mel(y), patch_frames=187, hop=187))  # (B, 1, 96, 187)
        with torch.inference_mode():
            fe = net.front_end(x)  # (B, 561, T)
            m1 = net.midend[0](fe)  # (B, 64, T)
        fepools.append(pool_max_mean(fe).numpy())  # (B, 1122)
        m1s.append(m1.numpy().astype(np.float16))
        owner += [len(labels)] * len(x)
        labels.append(clip.labels[task][0])
        groups.append(group_key(clip.artist, clip.id))
        if i % 100 == 0:
            print(f"{kind}: {i} clips, {time.perf_counter() - t0:.0f} s", flush=True)
    np.savez(out, m1=np.concatenate(m1s), fepool=np.concatenate(fepools), owner=np.array(owner),
             labels=np.array(labels), groups=np.array(groups))  # fmt: skip


class Top:
    """The trainable top of musicnn: mid-end layers 2-3, back-end, a new output layer."""

    def __new__(cls, net, n_classes: int):
        import torch
        from torch import nn

        from mcbr_core.models.musicnn import Musicnn, pool_max_mean

        class _Top(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.mid = nn.ModuleList([copy.deepcopy(net.midend[1]), copy.deepcopy(net.midend[2])])
                self.bn_pool, self.dense = copy.deepcopy(net.bn_pool), copy.deepcopy(net.dense)
                self.bn_dense = copy.deepcopy(net.bn_dense)
                self.drop = nn.Dropout(0.5)
                self.out = nn.Linear(net.dense.out_features, n_classes)

            def embed(self, m1: torch.Tensor, fepool: torch.Tensor) -> torch.Tensor:
                m2 = self.mid[0](m1) + m1
                m3 = self.mid[1](m2) + m2
                pooled = torch.cat(
                    [fepool, pool_max_mean(torch.cat([m1, m2, m3], dim=1))], dim=1
                )  # (B, 1506)
                return Musicnn.embed_pooled(self, pooled)  # (B, 200), through this copy's layers

            def forward(self, m1: torch.Tensor, fepool: torch.Tensor) -> torch.Tensor:
                return self.out(self.drop(self.embed(m1, fepool)))

        return _Top()


def main(data: Path, kind: str, task: str) -> None:
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.preprocessing import StandardScaler

    from mcbr_core.models.musicnn import load_musicnn
    from mcbr_core.models.shipped import resolve_model
    from mcbr_core.training.splits import grouped_folds

    warnings.filterwarnings("ignore")
    cache = Path(".cache/finetune-top") / f"{kind}-{task}.npz"
    cache.parent.mkdir(parents=True, exist_ok=True)
    net, _ = load_musicnn(resolve_model("msd-musicnn"))
    if not cache.exists():
        extract(net, kind, data / kind, task, cache)
    d = np.load(cache)
    m1_all, fep_all, owner = torch.from_numpy(d["m1"]), torch.from_numpy(d["fepool"]), d["owner"]
    classes = sorted(set(d["labels"].tolist()))
    y = np.array([classes.index(v) for v in d["labels"]])
    n = len(y)
    folds = grouped_folds(list(d["groups"]), np.eye(len(classes))[y], 5, seed=0)
    rows_of = [np.flatnonzero(owner == i) for i in range(n)]
    torch.manual_seed(0)
    print(f"{kind} {task}: {n} clips, {len(owner)} patches, classes {classes}", flush=True)

    def clip_probs(top, clips: np.ndarray) -> np.ndarray:
        top.eval()
        out = []
        with torch.inference_mode():
            for i in clips:
                r = rows_of[i]
                out.append(torch.softmax(top(m1_all[r].float(), fep_all[r]), dim=1).mean(0).numpy())
        return np.array(out)

    def clip_embeddings(top, clips: np.ndarray) -> np.ndarray:
        top.eval()
        with torch.inference_mode():
            return np.array(
                [top.embed(m1_all[rows_of[i]].float(), fep_all[rows_of[i]]).mean(0).numpy() for i in clips]
            )

    frozen = Top(net, len(classes))
    emb = clip_embeddings(frozen, np.arange(n))  # (n, 200): the pretrained clip-mean embedding
    head_scores, tune_scores = [], []
    for f in range(5):
        v = (f + 1) % 5
        tr, va, te = (
            np.flatnonzero((folds != f) & (folds != v)),
            np.flatnonzero(folds == v),
            np.flatnonzero(folds == f),
        )

        # the clip head's protocol
        def logreg(rows: np.ndarray, C: float):
            sc = StandardScaler().fit(emb[rows])
            m = LogisticRegression(C=C, max_iter=3000).fit(sc.transform(emb[rows]), y[rows])
            return lambda part: m.predict(sc.transform(emb[part]))

        C = max(
            [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0],
            key=lambda c: f1_score(y[va], logreg(tr, c)(va), average="macro"),
        )
        p = logreg(np.concatenate([tr, va]), C)(te)
        head_scores.append((f1_score(y[te], p, average="macro"), accuracy_score(y[te], p)))
        # fine-tuning the top
        top = Top(net, len(classes))
        pretrained = [p_ for n_, p_ in top.named_parameters() if not n_.startswith("out.")]
        opt = torch.optim.AdamW([{"params": pretrained, "lr": LR / 10}, {"params": top.out.parameters(), "lr": LR}],
                                weight_decay=1e-2)  # fmt: skip
        patches_tr = np.concatenate([rows_of[i] for i in tr])
        y_patch = torch.from_numpy(y[owner[patches_tr]])
        best, best_state, bad = -1.0, None, 0
        rng = np.random.default_rng(f)
        t0 = time.perf_counter()
        for epoch in range(EPOCHS):  # noqa: B007 - reported after the loop
            top.train()
            order = rng.permutation(len(patches_tr))
            for s in range(0, len(order), BATCH):
                b = order[s : s + BATCH]
                r = patches_tr[b]
                loss = torch.nn.functional.cross_entropy(top(m1_all[r].float(), fep_all[r]), y_patch[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
            score = f1_score(y[va], clip_probs(top, va).argmax(1), average="macro")
            if score > best:
                best, best_state, bad = score, copy.deepcopy(top.state_dict()), 0
            else:
                bad += 1
            if bad >= PATIENCE:
                break
        top.load_state_dict(best_state)
        p = clip_probs(top, te).argmax(1)
        tune_scores.append((f1_score(y[te], p, average="macro"), accuracy_score(y[te], p)))
        print(f"fold {f}: head macro-F1 {head_scores[-1][0]:.3f} acc {head_scores[-1][1]:.3f} | fine-tuned top "
              f"macro-F1 {tune_scores[-1][0]:.3f} acc {tune_scores[-1][1]:.3f} (best epoch of {epoch + 1}, "
              f"{time.perf_counter() - t0:.0f} s)", flush=True)  # fmt: skip
    for name, s in (
        ("clip head (logistic regression, clip mean)", head_scores),
        ("fine-tuned top", tune_scores),
    ):
        a = np.array(s)
        print(
            f"| {name} | {a[:, 0].mean():.3f} ± {a[:, 0].std():.3f} | {a[:, 1].mean():.3f} ± {a[:, 1].std():.3f} |"
        )


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1].startswith("-"):
        sys.exit(__doc__)
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3])
