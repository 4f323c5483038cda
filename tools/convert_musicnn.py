"""Convert the pretrained taggers of the musicnn wheel (MSD/MTT_musicnn, MSD/MTT_vgg) to mcbr model files.

Reads the TF1 checkpoints straight out of the musicnn 0.1.0 wheel (no
TensorFlow, no extraction), maps them onto ``mcbr_core.models.musicnn.Musicnn``
or ``mcbr_core.models.musicnn_vgg.MusicnnVgg`` (strict: no missing or unexpected
key) and writes, under ``--out`` (default ``models/``):

* ``msd-musicnn``, ``mtt-musicnn``, ``msd-vgg``, ``mtt-vgg``: ``.safetensors`` with
  their card, and the ``.json`` sidecars ``save_model`` writes beside them;
* the same names with ``.md``: human-readable model cards;
* ``LICENSE-musicnn.md``, the ISC licence of the wheel.

If the shared reference (``musicnn_reference.json`` and its audio) is found
(``--shared``, else ``$MCBR_SHARED``, else ``../shared`` beside the repository),
the converted models are run on the reference clips and the agreement with the
TF outputs it holds (musicnn only: it has none of the VGG models) is written
into the ``.md`` cards.

Usage::

    python tools/convert_musicnn.py --wheel musicnn-0.1.0-py3-none-any.whl [--out models/]

The wheel: ``pip download musicnn==0.1.0 --no-deps``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(REPO))

import torch

from mcbr_core.backends.musicnn_vocab import MSD_LABELS, MTT_LABELS, kinds
from mcbr_core.features.musicnn_mel import MusicnnMel, MusicnnMelConfig
from mcbr_core.features.patches import patches
from mcbr_core.models import musicnn_vgg
from mcbr_core.models.checkpoint import save_model
from mcbr_core.models.musicnn import Musicnn, MusicnnConfig, load_musicnn, state_dict_from_tf
from tools.porting import sha256_file
from tools.tfcheckpoint import read_wheel_checkpoint

WHEEL_NAME = "musicnn-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa"
LICENSE_PATH = "musicnn-0.1.0.dist-info/LICENSE.md"
NOTICE = (
    "Copyright (c) Music Technology Group, Universitat Pompeu Fabra 2019. "
    "Code developed by Jordi Pons (www.jordipons.me)."
)
#: per architecture: family, network and config classes, TF mapping, (trainable, BN statistics)
#: element counts, embedding layer, and the card's prose
ARCHS: dict[str, dict[str, Any]] = {
    "musicnn": {
        "family": "musicnn",
        "net": Musicnn,
        "config": MusicnnConfig,
        "from_tf": state_dict_from_tf,
        "counts": (787_159, 4_920),  # conv/dense weights and biases + BN gamma/beta; BN moving means/vars
        "layer": "penultimate (BN_10), mean over patches",
        "paper": 'musicnn (Pons & Serra, "musicnn: pre-trained convolutional neural networks for music '
        'audio tagging",\nISMIR 2019 LBD)',
        "embedding": "the 200-d penultimate layer\nserves as an embedding",
        "architecture": "musically motivated front-end (timbral 7x38 and 7x67 convs, temporal 128/64/32\n"
        "  convs), residual dense mid-end, global max+mean pooling, dense 200, output 50",
        "patches": "Clip tags = mean of per-patch probabilities; clip embedding = mean of\n"
        "  per-patch penultimate vectors.",
    },
    "vgg": {
        "family": "musicnn-vgg",
        "net": musicnn_vgg.MusicnnVgg,
        "config": musicnn_vgg.MusicnnVggConfig,
        "from_tf": musicnn_vgg.state_dict_from_tf,
        "counts": (605_748, 1_282),
        "layer": "pool5 (after BN_5 and the last max-pool), flattened in TF order, mean over patches",
        "paper": "the VGG baseline of musicnn (Pons & Serra, ISMIR 2019 LBD; `vgg` in `musicnn/models.py`)",
        "embedding": "the 256-d flattened `pool5`\n(the last pooled map, the dense layer's input) "
        "serves as an embedding",
        "architecture": "input BN, five blocks of 3x3 conv (128 filters) -> ReLU -> BN -> max-pool\n"
        "  (window/stride over time x mel: {pools}), flatten (2 x 1 x 128), dense 50",
        "patches": "The network takes exactly 187 frames (the dense layer sees the flattened map). "
        "Clip tags =\n  mean of per-patch probabilities; clip embedding = mean of per-patch `pool5` vectors.",
    },
}
MSD = {
    "labels": MSD_LABELS,
    "data": "Million Song Dataset / Last.fm top-50 tags",
    "about": "Last.fm's 50 most frequent tags on the Million Song Dataset: genres, moods, eras "
    "and a few instrumentation/voice tags.",
}
MTT = {
    "labels": MTT_LABELS,
    "data": "MagnaTagATune top-50",
    "about": "the 50 most frequent MagnaTagATune tags: instruments, voice, tempo/loudness and some genres.",
}
#: model name -> its checkpoint in the wheel, architecture, and dataset facts
MODELS: dict[str, dict[str, Any]] = {
    f"{data.lower()}-{arch}": {
        "dir": f"musicnn/{data}_{arch}",
        "ref_key": f"{data}_{arch}",
        "arch": arch,
        # MSD_vgg was trained with its own pooling (see mcbr_core.models.musicnn_vgg)
        "config": musicnn_vgg.MSD_VGG if (data, arch) == ("MSD", "vgg") else ARCHS[arch]["config"](),
    }
    | facts
    for arch in ("musicnn", "vgg")
    for data, facts in (("MSD", MSD), ("MTT", MTT))
}


def parse_result(text: str) -> dict[str, Any]:
    """Read ROC-AUC and PR-AUC from an ``experiment.result`` file.

    MSD's file lists ``AUC:`` twice (ROC first, then PR); MTT's names them
    ``ROC-AUC:`` and ``PR-AUC:``. Either way the first figure is ROC-AUC.
    """
    values = [float(v) for v in re.findall(r"AUC:\s*([0-9.]+)", text)]
    if len(values) != 2:
        raise SystemExit(f"unexpected experiment.result contents: {text!r}")
    return {
        "roc_auc": values[0],
        "pr_auc": values[1],
        "source": "experiment.result in the wheel",
        "raw": text.strip(),
    }


def count_params(sd: dict[str, torch.Tensor]) -> tuple[int, int]:
    """``(trainable, BN statistics)`` element counts of a state dict."""
    stats = sum(v.numel() for k, v in sd.items() if k.endswith(("running_mean", "running_var")))
    return sum(v.numel() for v in sd.values()) - stats, stats


def find_shared(arg: str | None) -> Path | None:
    """The shared folder holding ``reference/musicnn_reference.json``, if any."""
    for cand in (arg, os.environ.get("MCBR_SHARED"), str(REPO.parent / "shared")):
        if cand and (Path(cand) / "reference" / "musicnn_reference.json").is_file():
            return Path(cand)
    return None


def load_16k(path: Path, sr_out: int = 16000) -> np.ndarray:
    """Decode to float32 mono and resample with soxr HQ to ``ceil(n * sr_out / sr_in)`` samples."""
    import soundfile as sf
    import soxr

    y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    y = y.mean(axis=1)  # (n,)
    n = math.ceil(y.shape[0] * sr_out / sr)  # librosa's output length
    if sr != sr_out:
        y = soxr.resample(y, sr, sr_out, quality="HQ")
    return np.pad(y[:n], (0, max(0, n - y.shape[0]))).astype(np.float32)


#: TF outputs of the VGG models on the shared reference clips (tools/musicnn_vgg_reference.py)
VGG_REFERENCE = REPO / "tests" / "core" / "data" / "musicnn_vgg_reference.json"


def reference_agreement(shared: Path, models: dict[str, Path]) -> dict[str, dict[str, float]]:
    """Max |difference| to the TF reference outputs over all reference clips, per model.

    musicnn's outputs come from the shared ``musicnn_reference.json``, the VGG models' from
    :data:`VGG_REFERENCE` (the clips are the same); a model in neither is left out.
    """
    refs: dict[str, dict[str, Any]] = {}  # clip path -> its reference outputs, both files merged
    for path in (shared / "reference" / "musicnn_reference.json", VGG_REFERENCE):
        for f in json.loads(path.read_text())["files"] if path.is_file() else ():
            refs[f["path"]] = refs.get(f["path"], {}) | f
    some = next(iter(refs.values()), {})
    nets = {key: load_musicnn(path)[0] for key, path in models.items() if MODELS[key]["ref_key"] in some}
    mel = MusicnnMel()
    cfg = mel.config
    out = {k: {"prob_mean": 0.0, "prob_patch0": 0.0, "embedding_mean": 0.0, "files": 0} for k in nets}
    for f in refs.values():
        audio = shared / "data" / f["path"]
        if not audio.is_file():
            continue
        x = torch.from_numpy(patches(mel(load_16k(audio)), patch_frames=cfg.patch_frames, hop=cfg.patch_hop))
        for key, net in nets.items():
            r = f[MODELS[key]["ref_key"]]
            with torch.no_grad():
                logits, emb = net.forward_features(x)
            prob = torch.sigmoid(logits).numpy()
            ref_emb = r.get("penultimate_mean", r.get("embedding_mean"))
            agg = out[key]
            agg["prob_mean"] = max(agg["prob_mean"], float(np.abs(prob.mean(0) - r["prob_mean"]).max()))
            agg["prob_patch0"] = max(agg["prob_patch0"], float(np.abs(prob[0] - r["prob_patch0"]).max()))
            agg["embedding_mean"] = max(
                agg["embedding_mean"], float(np.abs(emb.numpy().mean(0) - ref_emb).max())
            )
            agg["files"] += 1
    return out


def human_card(key: str, card: dict[str, Any], agreement: dict[str, float] | None, sd_bytes: int) -> str:
    """Markdown model card."""
    m = MODELS[key]
    arch = ARCHS[m["arch"]]
    metrics = card["metrics"]
    labels = ", ".join(card["heads"]["tags"])
    if agreement and agreement["files"]:
        made = (
            "the original TensorFlow graph; reference values are rounded to 6 significant digits"
            if m["arch"] == "musicnn"
            else "the checkpoint's own TensorFlow training graph (`.meta`) run on the same log-mel patches "
            "(`tools/musicnn_vgg_reference.py`, `tests/core/data/musicnn_vgg_reference.json`)"
        )
        agree = (
            f"Measured by the converter on the {agreement['files']} clips of the shared musicnn reference "
            "(decode with libsndfile, soxr HQ to 16 kHz, this repository's mel and network, "
            f"compared with {made}):\n\n"
            "| quantity | max abs difference |\n|---|---|\n"
            f"| clip tag probabilities (mean over patches) | {agreement['prob_mean']:.2e} |\n"
            f"| tag probabilities, first patch | {agreement['prob_patch0']:.2e} |\n"
            f"| embedding ({arch['layer'].split(' (')[0].split(',')[0]}, mean over patches) "
            f"| {agreement['embedding_mean']:.2e} |\n"
        )
    else:
        agree = "Not measured in this run (the shared musicnn reference was not found).\n"
    if m["ref_key"] == "MSD_vgg":
        agree += (
            "\nMSD_vgg's training graph pools differently from `vgg` in the wheel's `models.py` "
            "(see `mcbr_core/models/musicnn_vgg.py`); this port follows the training graph. Run with the "
            "wheel's pooling, the same weights differ from the training graph by up to 0.2 in clip "
            "probabilities (measured on these clips).\n"
        )
    n_train = arch["counts"][0]
    pools = ", ".join(f"{pt}x{pf}/{st}x{sf}" for pt, pf, st, sf in getattr(m["config"], "pools", list)())
    return f"""# {card["name"]} (`{card["id"]}`)

{arch["paper"]}, the `{m["dir"].split("/")[-1]}` checkpoint of the `musicnn` 0.1.0 wheel, converted to
PyTorch.

It predicts {m["about"]}
Outputs are 50 independent sigmoid probabilities (multi-label); {arch["embedding"]}.

- **Architecture**: {arch["architecture"].format(pools=pools)}.
  {n_train:,} trainable parameters; weights {sd_bytes:,} bytes (float32 safetensors).
- **Input**: 16-kHz mono, log-mel (`musicnn-mel` v{card["features"]["version"]}: 512-pt STFT, hop 256,
  96 Slaney mel bands to 8 kHz, float16 round-trip, `log10(10000 x + 1)`), patches of 187 frames
  (3 s), non-overlapping. {arch["patches"]}
- **Training data**: {card["training"]["data"]} ({card["training"]["by"]}).
- **Metrics** (from the wheel's `experiment.result`): ROC-AUC {metrics["roc_auc"]:.4f}, PR-AUC
  {metrics["pr_auc"]:.4f}.
- **Tags** (model order): {labels}.

## Agreement with the original

{agree}
## Licence

ISC, see `LICENSE-musicnn.md`:

> {NOTICE}

The converted weights come from the same wheel and carry the same notice. The training datasets
have their own terms.

## Regenerate

```
pip download musicnn==0.1.0 --no-deps   # {WHEEL_NAME}, sha256 {WHEEL_SHA256}
python tools/convert_musicnn.py --wheel {WHEEL_NAME} --out models/
```
"""


def model_card(key: str, result: str) -> dict[str, Any]:
    """The card of model ``key`` (``"msd-vgg"``), ``result`` its ``experiment.result`` text."""
    m = MODELS[key]
    arch = ARCHS[m["arch"]]
    config = m["config"]
    return {
        "id": f"{key}-1",
        "name": key,
        "backend": "musicnn",
        "architecture": {"family": arch["family"], "config": asdict(config)},
        "features": {
            "extractor": "musicnn-mel",
            "version": MusicnnMelConfig().version,
            "config": asdict(MusicnnMelConfig()),
        },
        "heads": {"tags": list(m["labels"])},
        "tag_kinds": {"tags": kinds(m["labels"])},
        "embedding": {
            "dim": config.dense_units if m["arch"] == "musicnn" else config.embedding_dim,
            "layer": arch["layer"],
            "metric": "angular",
        },
        "source": {
            "wheel": WHEEL_NAME,
            "sha256": WHEEL_SHA256,
            "checkpoint": m["dir"] + "/",
            "converter": "tools/convert_musicnn.py",
        },
        "licence": {"spdx": "ISC", "notice": NOTICE},
        "metrics": parse_result(result),
        "training": {"data": m["data"], "by": "Pons & Serra 2019"},
        "versions": {"torch": torch.__version__, "numpy": np.__version__},
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wheel", type=Path, required=True, help=f"path to {WHEEL_NAME}")
    ap.add_argument("--out", type=Path, default=REPO / "models", help="output folder (default: models/)")
    ap.add_argument("--shared", help="shared folder with reference/musicnn_reference.json (optional)")
    args = ap.parse_args(argv)

    digest = sha256_file(args.wheel)
    if digest != WHEEL_SHA256:
        raise SystemExit(f"{args.wheel}: sha256 {digest} does not match {WHEEL_SHA256}")
    args.out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(args.wheel) as zf:
        licence_text = zf.read(LICENSE_PATH).decode("utf-8")
        results = {k: zf.read(f"{m['dir']}/experiment.result").decode("utf-8") for k, m in MODELS.items()}
    if NOTICE not in licence_text:
        raise SystemExit("the wheel's LICENSE.md does not carry the expected copyright notice")
    (args.out / "LICENSE-musicnn.md").write_text(licence_text)

    written: dict[str, Path] = {}
    cards: dict[str, dict[str, Any]] = {}
    for key, m in MODELS.items():
        t0 = time.perf_counter()
        arch = ARCHS[m["arch"]]
        sd = arch["from_tf"](read_wheel_checkpoint(args.wheel, m["dir"]), m["config"])
        n_train, n_stats = count_params(sd)
        if (n_train, n_stats) != arch["counts"]:
            raise SystemExit(
                f"{m['dir']}: {n_train} trainable + {n_stats} BN stats, expected {arch['counts']}"
            )
        missing, unexpected = arch["net"](m["config"]).load_state_dict(sd, strict=False)
        if missing or unexpected:  # every key present, none left over
            raise SystemExit(f"{m['dir']}: missing {missing}, unexpected {unexpected}")
        card = model_card(key, results[key])
        written[key] = save_model(args.out / f"{key}.safetensors", sd, card)
        written[key].chmod(0o644)  # shipped files: world-readable like the rest of the tree
        cards[key] = card
        print(
            f"{written[key]}: {n_train:,} trainable + {n_stats:,} BN stats, "
            f"{written[key].stat().st_size:,} bytes ({time.perf_counter() - t0:.2f} s)"
        )

    shared = find_shared(args.shared)
    agreement = reference_agreement(shared, written) if shared else {}
    for key, card in cards.items():
        a = agreement.get(key)
        if a:
            print(
                f"{card['name']}: max |d| vs TF reference over {a['files']} clips: "
                f"prob_mean {a['prob_mean']:.2e}, "
                f"prob_patch0 {a['prob_patch0']:.2e}, embedding_mean {a['embedding_mean']:.2e}"
            )
        md = human_card(key, card, a, written[key].stat().st_size)
        (args.out / f"{key}.md").write_text(md)
    if not shared:
        print("shared musicnn reference not found: agreement not measured")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
