"""Convert Won et al.'s MTG-Jamendo and MSD taggers to mcbr model files.

Reads the released PyTorch state dicts (``best_model.pth`` of
sota-music-tagging-models, MIT licence) with ``torch.load(weights_only=True)``,
loads each into ``mcbr_core.models.won`` with ``strict=True`` (no missing or
unexpected keys), and writes, under ``--out`` (default ``models/``):

* ``<name>.safetensors`` with its card, and the ``.json`` sidecar ``save_model``
  writes beside it (``<name>`` is ``jamendo-fcn``, ``msd-fcn``, ``jamendo-crnn``,
  ``msd-crnn`` or ``jamendo-musicnn``);
* ``<name>.md``, the human-readable card;
* ``LICENSE-won.md``, the MIT licence of the weights.

Each converted file is loaded back and compared with the network loaded from the
``.pth`` on the same input (they must agree exactly). If the shared data is found
(``--data``, else ``$MCBR_SHARED/data``, else ``../shared/data``), the tool also runs
a few real clips through both front ends (numpy ``won-mel`` + patches, as the plugin
does, and the torch front end with the checkpoint's own window and filterbank, as
torchaudio computed it in training) and prints the top tags.

Usage::

    python tools/convert_won.py [--weights DIR] [--out models/] [--models jamendo-fcn,msd-fcn]

``--weights`` defaults to ``$MCBR_SHARED/reference/weights/won-sota-tagging``, else
``../shared/reference/weights/won-sota-tagging`` beside the checkout.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(REPO))

import torch

from mcbr_core.backends.won_vocab import JAMENDO_IDS, JAMENDO_LABELS, MSD_LABELS, jamendo_kinds, msd_kinds
from mcbr_core.features.patches import patches
from mcbr_core.features.spectral import mel_filterbank
from mcbr_core.features.won_mel import WonMel, WonMelConfig
from mcbr_core.models.checkpoint import save_model
from mcbr_core.models.won import FAMILIES, WonTagger, load_won
from tools.porting import decode, sha256_file

SOURCE_REPO = "Un-bias/sota-music-tagging-models @ b4331b07 (a fork of minzwon/sota-music-tagging-models)"
NOTICE = "Copyright (c) 2020 Music Technology Group, Universitat Pompeu Fabra. Code developed by Minz Won."
CITATION = (
    'M. Won, A. Ferraro, D. Bogdanov and X. Serra, "Evaluation of CNN-based automatic music tagging '
    'models", Proc. Sound and Music Computing Conference (SMC), 2020.'
)
FCN_PATCH = 1 + 464_000 // 256  # 1813 frames: the 29-s training chunks of FCN and CRNN
MUSICNN_PATCH = 1 + 48_000 // 256  # 188 frames: the 3-s chunks of the short-chunk musicnn

ARCH: dict[str, dict[str, Any]] = {
    "fcn": {
        "family": "won-fcn", "patch": FCN_PATCH, "layer": "penultimate: the last conv block's 64 channels "
        "pooled to 1 x 1 (input of the output layer), mean over patches",
        "about": "FCN (Choi, Fazekas & Sandler 2016): five 3x3 conv-BN-ReLU-max-pool blocks "
        "(64, 128, 128, 128, 64 channels) that pool a 29-s log-mel to 1 x 1, dense 64 -> 50",
    },
    "crnn": {
        "family": "won-crnn", "patch": FCN_PATCH, "layer": "penultimate: the two-layer GRU's last output "
        "(32-d), mean over patches",
        "about": "CRNN (Choi et al. 2017): four 3x3 conv-BN-ReLU-max-pool blocks (64, 128, 128, 128 "
        "channels) that pool the frequency axis away, a two-layer GRU (32 units) over the 18 remaining "
        "time steps, dense 32 -> 50 on its last output",
    },
    "musicnn": {
        "family": "won-musicnn", "patch": MUSICNN_PATCH, "layer": "penultimate: ReLU(BN(dense 1506 -> 200)), "
        "mean over patches",
        "about": "musicnn (Pons & Serra 2019) as Won re-implemented it for 3-s chunks: vertical 67x7 and "
        "38x7 timbral convs (204 filters), horizontal 129/65/33 temporal convs (51 filters) on the "
        "band-averaged spectrogram, three residual 1-d convs (64), global max and mean pooling, "
        "dense 200, dense 50",
    },
}  # fmt: skip

DATA: dict[str, dict[str, Any]] = {
    "jamendo": {
        "data": "MTG-Jamendo, top-50 tags (genres, instruments, moods/themes), the authors' split",
        "labels": JAMENDO_LABELS, "ids": JAMENDO_IDS, "kinds": jamendo_kinds,
        "about": "the 50 most frequent MTG-Jamendo tags: 31 genres, 14 instruments and 5 moods/themes "
        "(Creative Commons music from Jamendo)",
    },
    "msd": {
        "data": "Million Song Dataset / Last.fm top-50 tags",
        "labels": MSD_LABELS, "ids": MSD_LABELS, "kinds": lambda: msd_kinds(MSD_LABELS),
        "about": "Last.fm's 50 most frequent tags on the Million Song Dataset (the same tags, in the same "
        "order, as msd-musicnn): genres, moods, eras and a few instrumentation/voice tags",
    },
}  # fmt: skip

#: Published test ROC-AUC (Won et al. 2020, Table 2)
ROC_AUC = {
    "jamendo-fcn": 0.8255, "jamendo-musicnn": 0.8302, "jamendo-crnn": 0.8195,
    "msd-fcn": 0.8744, "msd-crnn": 0.8722,
}  # fmt: skip

#: sha256 of the released state dicts (``sha256sum`` in the shared weights folder)
SHA256 = {
    "jamendo-crnn": "0a558989c0793f488cb677d188464c91f47c007f7c70473230e55537ca598215",
    "jamendo-fcn": "7bce08a66dbc70d096b0a330f44b4cacd9aa25519b83489fbb98f2164a194e2b",
    "jamendo-musicnn": "66280f4859376377c47f64313c7ac889a3201fdb06a01bf6e94ac6e619081bb5",
    "msd-crnn": "ebb99855ed0c83f38845db9cfb383dd6fc70938bc58701dcb66e18af9ee7fbea",
    "msd-fcn": "6012aa7eecf864a8081faedca56af054521e8dfb9c5c98659a3dd5d3e1e66f21",
}

#: the models that ship (the others convert with --models; see docs/models.md for why)
SHIPPED = ("jamendo-fcn", "msd-fcn")

#: real clips for the checks: (what it is, path under the shared data)
CHECK_CLIPS = (
    ("metal (Dismember)", "4q/MER_audio_taffc_dataset/Q2/MT0000011357.mp3"),
    ("metal (Disturbed)", "4q/MER_audio_taffc_dataset/Q2/MT0006746691.mp3"),
    ("classical (GTZAN)", "gtzan/genres/classical/classical.00000.mp3"),
    ("hip hop (Onyx)", "4q/MER_audio_taffc_dataset/Q2/MT0006939177.mp3"),
    ("reggae (Bob Marley)", "4q/MER_audio_taffc_dataset/Q4/MT0000202045.mp3"),
)


def find_shared(arg: str | None, rel: str) -> Path | None:
    """``arg``, or ``$MCBR_SHARED/rel``, or ``../shared/rel`` beside the checkout, if it exists."""
    cands = (
        [arg]
        if arg
        else [os.path.join(os.environ["MCBR_SHARED"], rel)]
        if os.environ.get("MCBR_SHARED")
        else []
    )
    cands.append(str(REPO.parent / "shared" / rel))
    for cand in cands:
        if cand and Path(cand).is_dir():
            return Path(cand)
    return None


def load_pth(weights: Path, name: str) -> tuple[WonTagger, dict[str, torch.Tensor]]:
    """The released state dict of ``name`` (sha256-checked, no pickled code) in its network, strictly."""
    data, arch = name.split("-")
    path = weights / data / arch / "best_model.pth"
    digest = sha256_file(path)
    if digest != SHA256[name]:
        raise SystemExit(f"{path}: sha256 {digest} does not match {SHA256[name]}")
    sd = torch.load(path, weights_only=True, map_location="cpu")
    cls, cfg_cls = FAMILIES[ARCH[arch]["family"]]
    net = cls(cfg_cls(n_frames=ARCH[arch]["patch"]))
    net.load_state_dict(sd, strict=True)  # raises on any missing or unexpected key, or a wrong shape
    return net.eval(), sd


def make_card(name: str, net: WonTagger, n_params: int) -> dict[str, Any]:
    """The model card of ``name``."""
    data, arch = name.split("-")
    d, a = DATA[data], ARCH[arch]
    feat = WonMelConfig(patch_frames=a["patch"], patch_hop=a["patch"])
    source: dict[str, Any] = {
        "repository": SOURCE_REPO,
        "path": f"models/{data}/{arch}/best_model.pth",
        "sha256": SHA256[name],
        "converter": "tools/convert_won.py",
    }
    if data == "jamendo":
        source["labels"] = list(d["ids"])  # the MTG-Jamendo ids behind the readable head labels
    return {
        "id": f"{name}-1",
        "name": name,
        "backend": "won",
        "architecture": {"family": a["family"], "config": asdict(net.config)},
        "features": {"extractor": "won-mel", "version": feat.version, "config": asdict(feat)},
        "heads": {"tags": list(d["labels"])},
        "tag_kinds": {"tags": d["kinds"]()},
        "embedding": {"dim": net.config.embedding_dim, "layer": a["layer"], "metric": "angular"},
        "source": source,
        "licence": {"spdx": "MIT", "notice": NOTICE, "file": "LICENSE-won.md"},
        "metrics": {
            "roc_auc": ROC_AUC[name],
            "source": "Won et al. 2020, Table 2 (published test-set ROC-AUC, not re-measured here)",
        },
        "training": {
            "data": d["data"],
            "by": "Won, Ferraro, Bogdanov & Serra 2020",
            "citation": CITATION,
            "parameters": n_params,
        },
        "versions": {"torch": torch.__version__, "numpy": np.__version__},
    }


def exactness(pth: WonTagger, shipped: WonTagger, n_frames: int) -> dict[str, float]:
    """Max |difference| between the ``.pth`` network and the converted file on seeded random log-mels."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 1, 96, n_frames, generator=gen) * 20.0 - 20.0  # (3, 1, 96, T), dB-like
    with torch.inference_mode():
        (la, ea), (lb, eb) = pth.forward_features(x), shipped.forward_features(x)
    return {
        "prob": float((torch.sigmoid(la) - torch.sigmoid(lb)).abs().max()),
        "logit": float((la - lb).abs().max()),
        "embedding": float((ea - eb).abs().max()),
    }


def decode_16k(path: Path) -> np.ndarray:
    """Mono 16-kHz float32 audio through the package's own decoders."""
    return decode(path, 16000)


def clip_checks(data: Path, nets: dict[str, WonTagger], labels: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """Front-end agreement (numpy vs torch) and top tags on the check clips."""
    out: dict[str, Any] = {"front_end_prob": {}, "top": {}}
    for what, rel in CHECK_CLIPS:
        path = data / rel
        if not path.is_file():
            continue
        y = decode_16k(path)
        for name, net in nets.items():
            n = net.config.n_frames
            mel = WonMel(WonMelConfig(patch_frames=n, patch_hop=n))
            x = torch.from_numpy(patches(mel(y), patch_frames=n, hop=n))  # (B, 1, 96, n)
            chunk = np.resize(y, (n - 1) * 256)  # one training-sized chunk (repeated if the clip is short)
            with torch.inference_mode():
                probs = torch.sigmoid(net(x)).mean(0).numpy()  # (50,)
                first_np = torch.sigmoid(net(torch.from_numpy(mel(chunk))[None]))  # (1, 50)
                first_torch = torch.sigmoid(net.forward_waveform(torch.from_numpy(chunk)[None])[0])
            d = float((first_np - first_torch).abs().max())
            out["front_end_prob"][name] = max(out["front_end_prob"].get(name, 0.0), d)
            top = np.argsort(-probs)[:4]
            out["top"].setdefault(name, []).append((what, [(labels[name][i], float(probs[i])) for i in top]))
    return out


def human_card(name: str, card: dict[str, Any], size: int, exact: dict[str, float], fe: float | None) -> str:
    """Markdown model card."""
    data, arch = name.split("-")
    d, a = DATA[data], ARCH[arch]
    feat = card["features"]["config"]
    seconds = feat["patch_frames"] * feat["hop_length"] / feat["sr"]
    fe_line = (
        f"| tag probabilities, numpy `won-mel` vs the torch front end (one chunk of each check clip) | {fe:.2e} |\n"
        if fe is not None
        else ""
    )
    order = (
        "\nThe Jamendo models output the tags in *sorted* id order (Won's code encodes labels with "
        "`LabelBinarizer().fit(TAGS)`, which sorts them), not in the order of `TAGS` in `src/eval.py`; "
        "the card's `source.labels` lists the ids in output order.\n"
        if data == "jamendo"
        else ""
    )
    kinds = card["tag_kinds"]["tags"]
    tags = ", ".join(f"{t} ({kinds[t][0]})" for t in card["heads"]["tags"])
    return f"""# {name} (`{card["id"]}`)

Won, Ferraro, Bogdanov & Serra, "Evaluation of CNN-based automatic music tagging models"
(SMC 2020): the released `{data}/{arch}` weights of sota-music-tagging-models, loaded into this
package's own implementation (`mcbr_core.models.won`) with `strict=True`.

It predicts {d["about"]}. Outputs are 50 independent sigmoid probabilities (multi-label);
the {card["embedding"]["dim"]}-d penultimate layer serves as an embedding.

- **Architecture**: {a["about"]}. {card["training"]["parameters"]:,} tensor elements
  (weights, BatchNorm statistics, the STFT window and the mel filterbank); file
  {size:,} bytes (float32 safetensors).
- **Input**: 16-kHz mono, `won-mel` v{card["features"]["version"]} (torchaudio's `MelSpectrogram`
  defaults: 512-point STFT, hop 256, reflect padding, power 2, 96 HTK mel bands 0-8000 Hz, no
  normalisation; then `10 log10(max(x, 1e-10))`); the network's own `BatchNorm2d(1)` follows.
  Patches of {feat["patch_frames"]} frames ({seconds:.1f} s, the training chunk), non-overlapping; a
  shorter track is repeated to fill one. Clip tags = mean of per-patch probabilities; clip
  embedding = mean of per-patch penultimate vectors.
- **Training data**: {d["data"]} ({card["training"]["by"]}).
- **Metrics**: ROC-AUC {ROC_AUC[name]:.4f} on the test set, as published (Table 2); not
  re-measured here.
- **Tags** (output order; kind: g genre, m mood, o other): {tags}.
{order}
## Port check

The `.pth` state dict loads with no missing or unexpected keys. Measured by the converter
(largest absolute difference):

| quantity | max abs difference |
|---|---|
| tag probabilities, `.pth` network vs this file (3 seeded random log-mels) | {exact["prob"]:.2e} |
| embedding, `.pth` network vs this file | {exact["embedding"]:.2e} |
{fe_line}
The filterbank computed here (`spectral.mel_filterbank(htk=True, norm=None)`, float64) is within
1.1e-5 of the one stored in the weights (torchaudio's, float32). No output of the original code
was available to compare with; see docs/models.md for the top tags on real clips.

## Licence

MIT, see `LICENSE-won.md`:

> {NOTICE}

Cite: {CITATION} The training datasets have their own terms.

## Regenerate

```
python tools/convert_won.py --models {name} --out models/
```
"""


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", help="folder won-sota-tagging/ (with LICENSE, tags.json, jamendo/, msd/)")
    ap.add_argument("--out", type=Path, default=REPO / "models", help="output folder (default: models/)")
    ap.add_argument(
        "--models",
        default=",".join(SHIPPED),
        help=f"comma-separated, or 'all' (default: {','.join(SHIPPED)})",
    )
    ap.add_argument("--data", help="shared data folder for the clip checks (optional)")
    args = ap.parse_args(argv)

    weights = find_shared(args.weights, "reference/weights/won-sota-tagging")
    if weights is None:
        raise SystemExit("the won-sota-tagging weights folder was not found; pass --weights")
    names = list(SHA256) if args.models == "all" else [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [n for n in names if n not in SHA256]
    if unknown:
        raise SystemExit(f"unknown models {unknown} (known: {', '.join(SHA256)})")
    licence = (weights / "LICENSE").read_text()
    if "MIT License" not in licence or "Music Technology Group, Universitat Pompeu Fabra" not in licence:
        raise SystemExit(f"{weights / 'LICENSE'} is not the expected MIT licence")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "LICENSE-won.md").write_text(
        "# Licence of the Won et al. tagger weights\n\n"
        "The `jamendo-*` and `msd-*` model files are converted from the weights released with\n"
        f"sota-music-tagging-models ({SOURCE_REPO}), under this licence:\n\n"
        "```\n" + licence.rstrip("\n") + "\n```\n\n"
        f"Cite: {CITATION}\n"
    )

    fb = mel_filterbank(sr=16000, n_fft=512, n_mels=96, fmin=0.0, fmax=8000.0, htk=True, norm=None).T
    nets: dict[str, WonTagger] = {}
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        t0 = time.perf_counter()
        net, sd = load_pth(weights, name)
        fb_diff = float(np.abs(sd["spec.mel_scale.fb"].numpy() - fb).max())
        n_params = sum(v.numel() for v in sd.values())
        card = make_card(name, net, n_params)
        path = save_model(args.out / f"{name}.safetensors", sd, card)
        path.chmod(0o644)
        shipped, _ = load_won(path)
        exact = exactness(net, shipped, net.config.n_frames)
        if max(exact.values()) > 1e-5:
            raise SystemExit(f"{name}: the converted file disagrees with the .pth network: {exact}")
        nets[name] = shipped
        results[name] = {"card": card, "size": path.stat().st_size, "exact": exact}
        print(
            f"{path}: {path.stat().st_size:,} bytes, strict load ok, .pth vs file: prob {exact['prob']:.1e}, "
            f"embedding {exact['embedding']:.1e}; stored vs computed filterbank {fb_diff:.1e} "
            f"({time.perf_counter() - t0:.1f} s)"
        )

    data = find_shared(args.data, "data")
    checks = clip_checks(data, nets, {n: DATA[n.split("-")[0]]["labels"] for n in nets}) if data else None
    for name, r in results.items():
        fe = checks["front_end_prob"].get(name) if checks else None
        (args.out / f"{name}.md").write_text(human_card(name, r["card"], r["size"], r["exact"], fe))
        if checks:
            print(f"{name}: numpy vs torch front end, first-patch probabilities: max |d| {fe:.1e}")
            for what, top in checks["top"].get(name, []):
                print(f"    {what:<22} " + ", ".join(f"{t} {p:.2f}" for t, p in top))
    if not data:
        print("shared data not found: clip checks skipped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
