"""Convert EfficientAT's ``mn04_as`` AudioSet tagger to an mcbr model file.

Reads the released PyTorch state dict with ``torch.load(weights_only=True)`` (no
pickled code runs), loads it into ``mcbr_core.models.efficientat.EfficientAT`` with
``strict=True``, and writes, under ``--out`` (default ``models/``):

* ``as-mn04.safetensors`` with its card, and the ``.json`` sidecar ``save_model``
  writes beside it;
* ``as-mn04.md``, the human-readable model card;
* ``LICENSE-efficientat.md``: the MIT licence of the weights and the CC BY 4.0
  attribution of the AudioSet label names.

It then checks the written file: the network loaded from it and the one loaded from
the ``.pt`` give the same outputs on random input and, when the shared data is found
(``--shared``, else ``$MCBR_SHARED``, else ``../shared`` beside the repository), on a
few real clips, whose top labels go into the ``.md`` card.

Usage::

    python tools/convert_efficientat.py --weights ../shared/reference/weights/efficientat [--out models/]

The folder holds ``mn04_as_mAP_432.pt`` (the EfficientAT v0.0.1 release asset),
``class_labels_indices.csv`` (EfficientAT's ``metadata/``) and ``LICENSE``.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(REPO))

import torch

from mcbr_core.backends.audioset_vocab import kinds
from mcbr_core.features.efficientat_mel import EfficientATMel, EfficientATMelConfig
from mcbr_core.features.patches import patches
from mcbr_core.models.checkpoint import save_model
from mcbr_core.models.efficientat import EfficientAT, EfficientATConfig, load_efficientat
from tools.porting import decode, sha256_file

NAME = "as-mn04"
WEIGHTS = "mn04_as_mAP_432.pt"
WEIGHTS_SHA256 = "899a8c6217063f6941793102a2780b3dd788ab11fce468d9cf5f0577c453321c"
LABELS = "class_labels_indices.csv"
LABELS_SHA256 = "cdd1049833c4b86127c2773ac0d14a2754b6a6d0d1798002ed5c66e699708429"
NOTICE = "Copyright (c) 2022 Florian Schmid"
N_TENSORS = 312  # including the 46 BatchNorm num_batches_tracked counters
N_PARAMETERS = 983_599
CITATION = (
    'F. Schmid, K. Koutini and G. Widmer, "Efficient Large-Scale Audio Tagging via '
    'Transformer-to-CNN Knowledge Distillation", ICASSP 2023.'
)
AUDIOSET_CITATION = (
    'J. F. Gemmeke et al., "Audio Set: An ontology and human-labeled dataset for audio events", ICASSP 2017.'
)
#: Real clips for the card's sanity check: (description, path under the shared data folder).
CHECK_CLIPS: tuple[tuple[str, str], ...] = (
    ("death metal (4Q Q2, Dismember)", "4q/MER_audio_taffc_dataset/Q2/MT0000011357.mp3"),
    ("rap (4Q Q1, Little Brother)", "4q/MER_audio_taffc_dataset/Q1/MT0001680969.mp3"),
    ("reggae (4Q Q1, Beenie Man)", "4q/MER_audio_taffc_dataset/Q1/MT0002538335.mp3"),
    ("classical (GTZAN classical.00000, 15 s)", "gtzan/genres/classical/classical.00000.mp3"),
)


def read_labels(path: Path) -> list[str]:
    """The 527 AudioSet display names in output order (``index`` column checked)."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if [int(r["index"]) for r in rows] != list(range(len(rows))):
        raise SystemExit(f"{path}: indices are not 0..{len(rows) - 1} in order")
    return [r["display_name"] for r in rows]


def find_shared(arg: str | None) -> Path | None:
    """The shared folder holding ``data/`` with the check clips, if any."""
    for cand in (arg, os.environ.get("MCBR_SHARED"), str(REPO.parent / "shared")):
        if cand and all((Path(cand) / "data" / p).is_file() for _, p in CHECK_CLIPS):
            return Path(cand)
    return None


def load_32k(path: Path) -> np.ndarray:
    """Mono 32-kHz float32 audio through the package's own decoders."""
    return decode(path, 32000)


def port_check(
    original: EfficientAT, shipped: Path, shared: Path | None, labels: list[str]
) -> dict[str, Any]:
    """Max |difference| between the ``.pt`` network and the written file, and top labels on real clips."""
    converted, _ = load_efficientat(shipped)
    gen = torch.Generator().manual_seed(0)
    inputs = [("random", torch.randn(3, 1, 128, 1000, generator=gen))]
    clips = []
    if shared is not None:
        mel = EfficientATMel()
        for desc, rel in CHECK_CLIPS:
            x = patches(
                mel(load_32k(shared / "data" / rel)), patch_frames=1000, hop=1000
            )  # (B, 1, 128, 1000)
            inputs.append((desc, torch.from_numpy(x)))
    worst = {"logits": 0.0, "probabilities": 0.0, "embedding": 0.0}
    with torch.inference_mode():
        for desc, x in inputs:
            (la, ea), (lb, eb) = original.forward_features(x), converted.forward_features(x)
            worst["logits"] = max(worst["logits"], float((la - lb).abs().max()))
            worst["probabilities"] = max(
                worst["probabilities"], float((la.sigmoid() - lb.sigmoid()).abs().max())
            )
            worst["embedding"] = max(worst["embedding"], float((ea - eb).abs().max()))
            if desc != "random":
                prob = lb.sigmoid().mean(0).numpy()
                top = np.argsort(-prob)[:6]
                clips.append({"clip": desc, "top": [(labels[i], round(float(prob[i]), 4)) for i in top]})
    return {"max_abs_diff": worst, "clips": clips, "inputs": len(inputs)}


def human_card(card: dict[str, Any], check: dict[str, Any], sd_bytes: int) -> str:
    """Markdown model card."""
    feats = card["features"]["config"]
    n_genre = sum(k == "genre" for k in card["tag_kinds"]["tags"].values())
    n_mood = sum(k == "mood" for k in card["tag_kinds"]["tags"].values())
    d = check["max_abs_diff"]
    rows = "\n".join(
        f"| {c['clip']} | " + ", ".join(f"{lab} {p:.2f}" for lab, p in c["top"]) + " |"
        for c in check["clips"]
    )
    clips = (
        "Top labels (mean sigmoid over the clip's 10-s patches), from the converted file:\n\n"
        f"| clip | top 6 labels |\n|---|---|\n{rows}\n"
        if rows
        else "Real clips were not found in this run (`../shared/data`), so only random input was compared.\n"
    )
    return f"""# {card["name"]} (`{card["id"]}`)

EfficientAT `mn04_as` (Schmid, Koutini & Widmer, "Efficient Large-Scale Audio Tagging via
Transformer-to-CNN Knowledge Distillation", ICASSP 2023): a MobileNetV3 at width 0.4 trained on
AudioSet by knowledge distillation from PaSST, converted to this package's safetensors format.

It predicts the 527 AudioSet classes (sounds, instruments, {n_genre} music genres and {n_mood} music
moods). Outputs are independent sigmoid probabilities (multi-label); the 512-d hidden layer of
the classifier serves as the embedding.

- **Architecture**: torchvision's MobileNetV3-Large layout, channels x 0.4 (stem 8, blocks up to
  64, last conv 384), sigmoid squeeze-and-excitation, global average pooling,
  `Linear(384, 512)` + Hardswish (the embedding), `Linear(512, 527)`.
  {N_PARAMETERS:,} parameters; weights {sd_bytes:,} bytes (float32 safetensors).
- **Input**: 32-kHz mono; `efficientat-mel` v{card["features"]["version"]}: pre-emphasis 0.97,
  {feats["n_fft"]}-point STFT with a symmetric Hann window of {feats["win_length"]} samples, hop
  {feats["hop_length"]}, Kaldi mel filterbank of {feats["n_mels"]} bands from {feats["fmin"]:g} to
  {feats["fmax"]:g} Hz on the power spectrum, `log(mel + 1e-5)`, `(x + 4.5) / 5`; patches of
  {feats["patch_frames"]} frames (10 s, the training length), non-overlapping. Clip tags = mean of
  per-patch probabilities; clip embedding = mean of per-patch hidden-layer vectors.
- **Training data**: {card["training"]["data"]}.
- **Metrics** (published): AudioSet mAP {card["metrics"]["audioset_mAP"]}.
- **Tags**: one head `tags` of 527 labels (`models/{card["name"]}.json` lists them in order, with
  their kinds: genre, mood or other; see `mcbr_core/backends/audioset_vocab.py`).

## Port check

Measured by `tools/convert_efficientat.py`: the network loaded from the released `.pt` and the
one loaded from this file, on {check["inputs"]} inputs (random input and the clips below, decoded
with this package's decoders and run through its `efficientat-mel` front end).

| quantity | max abs difference |
|---|---|
| logits | {d["logits"]:.2e} |
| probabilities | {d["probabilities"]:.2e} |
| embedding | {d["embedding"]:.2e} |

{clips}
## Licence

The weights are MIT-licensed, see `LICENSE-efficientat.md`:

> {NOTICE}

The label names are those of the AudioSet ontology (Google, CC BY 4.0). The training data,
AudioSet, has its own terms.

Cite: {CITATION}

## Regenerate

```
python tools/convert_efficientat.py --weights ../shared/reference/weights/efficientat --out models/
```

`{WEIGHTS}` (sha256 `{WEIGHTS_SHA256}`) is the asset of the EfficientAT v0.0.1 release
(github.com/fschmid56/EfficientAT); `{LABELS}` is that repository's `metadata/{LABELS}`.
"""


def licence_text(mit: str) -> str:
    """``LICENSE-efficientat.md``: the MIT text of the weights and the labels' attribution."""
    return f"""# EfficientAT weights (`models/as-mn04.*`)

The weights in `as-mn04.safetensors` are converted, unchanged in value, from `{WEIGHTS}`,
released with EfficientAT (https://github.com/fschmid56/EfficientAT, release v0.0.1) by
Florian Schmid, Khaled Koutini and Gerhard Widmer, under this licence:

```
{mit.strip()}
```

Cite: {CITATION}

# AudioSet label names (`heads` in `as-mn04.json` and the card of `as-mn04.safetensors`)

The 527 class names come from the AudioSet ontology, via EfficientAT's
`metadata/{LABELS}`: Google LLC, AudioSet (https://research.google.com/audioset/),
licensed under the Creative Commons Attribution 4.0 International licence (CC BY 4.0,
https://creativecommons.org/licenses/by/4.0/). They are used unchanged, except that this
package assigns each a kind (genre, mood or other).

Cite: {AUDIOSET_CITATION}
"""


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--weights", type=Path, required=True, help=f"folder with {WEIGHTS}, {LABELS} and LICENSE"
    )
    ap.add_argument("--out", type=Path, default=REPO / "models", help="output folder (default: models/)")
    ap.add_argument("--shared", help="shared folder with data/ (optional; for the real-clip check)")
    args = ap.parse_args(argv)

    for name, expected in ((WEIGHTS, WEIGHTS_SHA256), (LABELS, LABELS_SHA256)):
        digest = sha256_file(args.weights / name)
        if digest != expected:
            raise SystemExit(f"{args.weights / name}: sha256 {digest} does not match {expected}")
    mit = (args.weights / "LICENSE").read_text(encoding="utf-8")
    if NOTICE not in mit or "MIT License" not in mit:
        raise SystemExit("the LICENSE file does not carry the expected MIT notice")
    labels = read_labels(args.weights / LABELS)

    sd = torch.load(args.weights / WEIGHTS, map_location="cpu", weights_only=True)
    if len(sd) != N_TENSORS:
        raise SystemExit(f"{WEIGHTS}: {len(sd)} tensors, expected {N_TENSORS}")
    config = EfficientATConfig()
    net = EfficientAT(config)
    net.load_state_dict(sd, strict=True)  # every key present, every shape right
    net.eval()
    n_params = sum(p.numel() for p in net.parameters())
    if n_params != N_PARAMETERS or len(labels) != config.n_labels:
        raise SystemExit(f"{n_params} parameters and {len(labels)} labels, expected {N_PARAMETERS} and 527")

    card = {
        "id": f"{NAME}-1",
        "name": NAME,
        "backend": "efficientat",
        "architecture": {"family": "efficientat-mobilenetv3", "config": asdict(config)},
        "features": {
            "extractor": "efficientat-mel",
            "version": EfficientATMelConfig().version,
            "config": asdict(EfficientATMelConfig()),
        },
        "heads": {"tags": labels},
        "tag_kinds": {"tags": kinds(labels)},
        "embedding": {
            "dim": config.embedding_dim,
            "layer": "classifier hidden layer (Linear 384->512, Hardswish), mean over patches",
            "metric": "angular",
        },
        "source": {
            "weights": WEIGHTS,
            "sha256": WEIGHTS_SHA256,
            "release": "https://github.com/fschmid56/EfficientAT/releases/tag/v0.0.1",
            "labels": LABELS,
            "labels_sha256": LABELS_SHA256,
            "converter": "tools/convert_efficientat.py",
        },
        "licence": {
            "spdx": "MIT",
            "notice": NOTICE,
            "file": "LICENSE-efficientat.md",
            "labels": {"spdx": "CC-BY-4.0", "by": "Google LLC, AudioSet ontology"},
        },
        "metrics": {"audioset_mAP": 0.432, "source": "published (EfficientAT release; Schmid et al. 2023)"},
        "training": {
            "data": "AudioSet (balanced + unbalanced), knowledge distillation from PaSST",
            "by": "Schmid, Koutini & Widmer 2023",
            "citation": CITATION,
        },
        "versions": {"torch": torch.__version__, "numpy": np.__version__},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = save_model(args.out / f"{NAME}.safetensors", {k: v.contiguous() for k, v in sd.items()}, card)
    path.chmod(0o644)  # shipped files: world-readable like the rest of the tree
    print(f"{path}: {len(sd)} tensors, {n_params:,} parameters, {path.stat().st_size:,} bytes")

    check = port_check(net, path, find_shared(args.shared), labels)
    d = check["max_abs_diff"]
    print(
        f"max |d| (.pt vs {path.name}) over {check['inputs']} inputs: logits {d['logits']:.2e}, "
        f"probabilities {d['probabilities']:.2e}, embedding {d['embedding']:.2e}"
    )
    for c in check["clips"]:
        print(f"  {c['clip']}: " + ", ".join(f"{lab} {p:.2f}" for lab, p in c["top"]))
    if max(d.values()) > 1e-5:
        raise SystemExit("the converted file does not reproduce the original outputs")
    (args.out / f"{NAME}.md").write_text(human_card(card, check, path.stat().st_size))
    (args.out / "LICENSE-efficientat.md").write_text(licence_text(mit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
