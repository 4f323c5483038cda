"""The EfficientAT port: network, Kaldi filterbank, front end, backend, and the shipped weights.

The comparison with the released ``.pt`` and the real-clip checks need the shared
folder (``$MCBR_SHARED`` or ``../shared`` beside the repository:
``reference/weights/efficientat/`` and audio under ``data/``); without it they skip.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from mcbr_core.features.efficientat_mel import EfficientATMel, EfficientATMelConfig
from mcbr_core.features.patches import patches
from mcbr_core.features.spectral import kaldi_mel_filterbank
from mcbr_core.models.efficientat import EfficientAT, EfficientATConfig, block_specs, make_divisible

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("MCBR_SHARED") or REPO.parent / "shared")
WEIGHTS = SHARED / "reference" / "weights" / "efficientat"
MODEL = REPO / "models" / "as-mn04.safetensors"
#: (clip, labels of which one must be among the 5 most probable, over all 527)
REAL_CLIPS = {
    "4q/MER_audio_taffc_dataset/Q2/MT0000011357.mp3": {"Heavy metal", "Rock music"},  # Dismember, death metal
    "4q/MER_audio_taffc_dataset/Q1/MT0001680969.mp3": {"Hip hop music"},  # Little Brother, rap
    "4q/MER_audio_taffc_dataset/Q1/MT0002538335.mp3": {"Reggae"},  # Beenie Man
    "gtzan/genres/classical/classical.00000.mp3": {"Classical music", "Orchestra"},
}


# --------------------------------------------------------------------------- network


@pytest.fixture(scope="module")
def random_net() -> EfficientAT:
    torch.manual_seed(0)
    net = EfficientAT()
    for mod in net.modules():  # non-trivial BN statistics, so the eval path is exercised
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
    return net.eval()


def test_block_layout_is_mobilenet_v3_large_at_width_04() -> None:
    assert [make_divisible(c * 0.4) for c in (16, 24, 64, 72, 184, 672, 1280)] == [
        8,
        16,
        24,
        32,
        72,
        272,
        512,
    ]
    specs = block_specs(EfficientATConfig())
    assert [s.out_ch for s in specs] == [8, 16, 16, 16, 16, 16, 32, 32, 32, 32, 48, 48, 64, 64, 64]
    assert [s.expanded for s in specs] == [8, 24, 32, 32, 48, 48, 96, 80, 72, 72, 192, 272, 272, 384, 384]
    assert [i for i, s in enumerate(specs) if s.stride == 2] == [1, 3, 6, 12]
    assert [i for i, s in enumerate(specs) if s.se] == [3, 4, 5, 10, 11, 12, 13, 14]
    assert [s.kernel for s in specs] == [3, 3, 3, 5, 5, 5, 3, 3, 3, 3, 3, 3, 5, 5, 5]
    net = EfficientAT()
    sd = net.state_dict()
    assert len(sd) == 312 and sum(p.numel() for p in net.parameters()) == 983_599
    assert sd["features.4.block.2.conc_se_layers.0.fc1.weight"].shape == (8, 32)
    assert sd["features.12.block.2.conc_se_layers.0.fc1.weight"].shape == (72, 272)  # make_divisible(68)
    assert sd["classifier.2.weight"].shape == (512, 384) and sd["classifier.5.weight"].shape == (527, 512)
    assert all(m.eps == 1e-3 for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))


@pytest.mark.parametrize("n_frames", [1000, 40])
def test_shapes(random_net: EfficientAT, n_frames: int) -> None:
    x = torch.randn(2, 1, 128, n_frames)
    with torch.inference_mode():
        logits, emb = random_net.forward_features(x)
        assert logits.shape == (2, 527) and emb.shape == (2, 512)
        pooled = random_net.pooled(x[1:])
        assert pooled.shape == (1, 384)
        # patches are independent in eval mode: batching does not mix them
        torch.testing.assert_close(random_net.embed_pooled(pooled), emb[1:], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(random_net.classifier["5"](emb), logits, rtol=0, atol=0)
        if n_frames < 100:
            assert torch.equal(random_net.embed(x), emb)


def test_inference_is_deterministic(random_net: EfficientAT) -> None:
    x = torch.randn(1, 1, 128, 1000, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        logits, _ = random_net.forward_features(x)
        again = random_net(x)  # forward() is the first output of forward_features()
    assert torch.equal(logits, again)


def test_bad_input(random_net: EfficientAT) -> None:
    with pytest.raises(ValueError, match="expected input"):
        random_net(torch.zeros(1, 128, 1000))
    with pytest.raises(ValueError, match="expected input"):
        random_net(torch.zeros(1, 1, 96, 1000))


def test_config() -> None:
    cfg = EfficientATConfig()
    assert EfficientATConfig.from_dict(json.loads(json.dumps(asdict(cfg)))) == cfg
    assert (cfg.pooled_dim, cfg.embedding_dim) == (384, 512)
    with pytest.raises(ValueError, match="unknown"):
        EfficientATConfig.from_dict({"bogus": 1})
    with pytest.raises(ValueError, match="strides"):
        EfficientATConfig(strides=(2, 2, 2))
    assert EfficientAT(EfficientATConfig(width_mult=1.0)).config.pooled_dim == 960  # mn10 builds from config


# --------------------------------------------------------------------------- front end


def _kaldi_banks_reference(n_mels: int, n_fft: int, sr: float, fmin: float, fmax: float) -> np.ndarray:
    """torchaudio.compliance.kaldi.get_mel_banks (no VTLN) plus EfficientAT's Nyquist column, in float64."""

    def mel(f: torch.Tensor) -> torch.Tensor:
        return 1127.0 * torch.log1p(f / 700.0)

    lo, hi = mel(torch.tensor(fmin, dtype=torch.float64)), mel(torch.tensor(fmax, dtype=torch.float64))
    delta = (hi - lo) / (n_mels + 1)
    b = torch.arange(n_mels, dtype=torch.float64)[:, None]
    left, centre, right = lo + b * delta, lo + (b + 1) * delta, lo + (b + 2) * delta
    m = mel(sr / n_fft * torch.arange(n_fft // 2, dtype=torch.float64))[None]
    banks = torch.clamp(torch.minimum((m - left) / (centre - left), (right - m) / (right - centre)), min=0)
    return torch.nn.functional.pad(banks, (0, 1)).numpy()


def _front_end_reference(y: np.ndarray) -> np.ndarray:
    """EfficientAT's AugmentMelSTFT in eval mode, in float64 torch (conv1d, torch.stft)."""
    x = torch.from_numpy(y.astype(np.float64))[None, None]  # (1, 1, n)
    x = torch.nn.functional.conv1d(x, torch.tensor([[[-0.97, 1.0]]], dtype=torch.float64))[:, 0]  # (1, n - 1)
    window = torch.hann_window(800, periodic=False, dtype=torch.float64)
    spec = torch.stft(
        x, 1024, hop_length=320, win_length=800, window=window, center=True, return_complex=True
    )
    power = spec.abs() ** 2  # (1, 513, T)
    mel = torch.from_numpy(_kaldi_banks_reference(128, 1024, 32000.0, 0.0, 15000.0)) @ power
    return (((mel + 1e-5).log() + 4.5) / 5.0)[0].numpy()  # (128, T)


def test_kaldi_mel_filterbank() -> None:
    fb = kaldi_mel_filterbank(sr=32000, n_fft=1024, n_mels=128, fmin=0.0, fmax=15000.0)
    assert fb.shape == (128, 513) and fb.dtype == np.float32 and not fb.flags.writeable
    assert fb is kaldi_mel_filterbank(sr=32000, n_fft=1024, n_mels=128, fmin=0.0, fmax=15000.0)  # cached
    np.testing.assert_allclose(fb, _kaldi_banks_reference(128, 1024, 32000.0, 0.0, 15000.0), atol=1e-6)
    assert (fb[:, -1] == 0).all() and fb.max() <= 1.0 and (fb.sum(axis=1) > 0).all()
    assert not fb[:, int(15000 / 31.25) + 1 :].any()  # nothing above fmax
    # Kaldi's conventions: fmax <= 0 counts from Nyquist
    np.testing.assert_array_equal(
        kaldi_mel_filterbank(sr=16000, n_fft=512, n_mels=40, fmax=-400.0),
        kaldi_mel_filterbank(sr=16000, n_fft=512, n_mels=40, fmax=7600.0),
    )
    with pytest.raises(ValueError, match="n_mels"):
        kaldi_mel_filterbank(sr=32000, n_fft=1024, n_mels=3)
    with pytest.raises(ValueError, match="even"):
        kaldi_mel_filterbank(sr=32000, n_fft=1023, n_mels=128)
    with pytest.raises(ValueError, match="fmin"):
        kaldi_mel_filterbank(sr=32000, n_fft=1024, n_mels=128, fmin=100.0, fmax=17000.0)


def test_front_end_matches_efficientat() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(3 * 32000) / 32000
    y = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    ours = EfficientATMel()(y)
    assert ours.shape == (1, 128, 1 + (y.size - 1) // 320) and ours.dtype == np.float32
    np.testing.assert_allclose(ours[0], _front_end_reference(y), atol=1e-5)


def test_front_end_lengths() -> None:
    mel = EfficientATMel()
    assert mel(np.zeros(320_000, np.float32)).shape == (1, 128, 1000)  # 10 s -> one patch
    assert mel.frames_per_second == 100.0 and mel.sample_rate == 32000
    short = mel(np.ones(100, np.float32))  # shorter than the reflect padding: zero-padded first
    assert short.shape == (1, 128, 2) and np.isfinite(short).all()
    assert patches(short, patch_frames=1000, hop=1000).shape == (1, 1, 128, 1000)
    with pytest.raises(ValueError, match="mono"):
        mel(np.zeros((2, 1000), np.float32))
    with pytest.raises(ValueError, match="win_length"):
        EfficientATMelConfig(win_length=2048)


def test_extractor_and_backend_are_registered() -> None:
    from mcbr_core.errors import ConfigError
    from mcbr_core.plugins import Plugins

    plugins = Plugins(entry_points=False)
    assert "efficientat" in plugins.registry("model backend").names()
    factory = plugins.registry("feature extractor").get("efficientat-mel")
    ext = factory(asdict(EfficientATMelConfig()))
    assert ext.name == "efficientat-mel" and ext.version == "1"
    with pytest.raises(ConfigError, match="unknown feature options"):
        factory({"n_mfcc": 20})


# --------------------------------------------------------------------------- the shipped model


@pytest.fixture(scope="module")
def shipped() -> tuple[EfficientAT, dict]:
    from mcbr_core.models.efficientat import load_efficientat

    if not MODEL.is_file():
        pytest.skip(f"{MODEL} missing; run tools/convert_efficientat.py")
    return load_efficientat(MODEL)


@pytest.mark.shipped
def test_shipped_card(shipped: tuple[EfficientAT, dict]) -> None:
    _, card = shipped
    assert card["id"] == "as-mn04-1" and card["backend"] == "efficientat"
    labels = card["heads"]["tags"]
    assert len(labels) == 527 and labels[0] == "Speech" and labels[137] == "Music"
    kinds = card["tag_kinds"]["tags"]
    genres = [lab for lab in labels if kinds[lab] == "genre"]
    moods = [lab for lab in labels if kinds[lab] == "mood"]
    assert len(genres) == 53 and {"Heavy metal", "Classical music", "Reggae"} <= set(genres)
    assert moods == ["Happy music", "Funny music", "Sad music", "Tender music", "Exciting music",
                     "Angry music", "Scary music"]  # fmt: skip
    assert kinds["Beatboxing"] == kinds["Song"] == kinds["Guitar"] == "other"
    assert card["embedding"]["dim"] == 512 and card["metrics"]["audioset_mAP"] == 0.432
    assert card["features"]["config"] == asdict(EfficientATMelConfig())
    assert card["licence"]["spdx"] == "MIT" and card["licence"]["labels"]["spdx"] == "CC-BY-4.0"
    text = (REPO / "models" / "LICENSE-efficientat.md").read_text()
    assert "Copyright (c) 2022 Florian Schmid" in text and "CC BY 4.0" in text


@pytest.mark.shipped
def test_shipped_equals_released_weights(shipped: tuple[EfficientAT, dict]) -> None:
    pt = WEIGHTS / "mn04_as_mAP_432.pt"
    if not pt.is_file():
        pytest.skip(f"released weights not found at {pt} (set MCBR_SHARED)")
    original = EfficientAT()
    result = original.load_state_dict(torch.load(pt, map_location="cpu", weights_only=True), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    original.eval()
    net, _ = shipped
    x = torch.randn(1, 1, 128, 1000, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        (la, ea), (lb, eb) = original.forward_features(x), net.forward_features(x)
    assert float((la - lb).abs().max()) < 1e-5 and float((ea - eb).abs().max()) < 1e-5


@pytest.fixture(scope="module")
def real_probs(shipped: tuple[EfficientAT, dict]) -> dict[str, np.ndarray]:
    from mcbr_core.audio.decode import PyAVDecoder, SoundfileDecoder, load_audio

    missing = [p for p in REAL_CLIPS if not (SHARED / "data" / p).is_file()]
    if missing:
        pytest.skip(f"shared audio missing under {SHARED / 'data'}: {', '.join(missing)}")
    net, _ = shipped
    mel, decoders = EfficientATMel(), [SoundfileDecoder(), PyAVDecoder()]
    out = {}
    for rel in REAL_CLIPS:
        y = load_audio(SHARED / "data" / rel, sr=32000, decoders=decoders)
        x = torch.from_numpy(patches(mel(y), patch_frames=1000, hop=1000))  # (B, 1, 128, 1000)
        with torch.inference_mode():
            out[rel] = torch.sigmoid(net(x)).mean(0).numpy()  # (527,)
    return out


@pytest.mark.shipped
@pytest.mark.parametrize("clip", list(REAL_CLIPS))
def test_real_clips_top_labels(
    clip: str, real_probs: dict[str, np.ndarray], shipped: tuple[EfficientAT, dict]
) -> None:
    labels = shipped[1]["heads"]["tags"]
    top5 = [labels[i] for i in np.argsort(-real_probs[clip])[:5]]
    assert top5[0] == "Music", top5
    assert REAL_CLIPS[clip] & set(top5), top5


@pytest.mark.shipped
def test_analyzer_end_to_end(tmp_path: Path) -> None:
    """``model: as-mn04`` through the registered decoder, extractor and backend."""
    from mcbr_core.analysis import Analyzer
    from mcbr_core.settings import AnalysisSettings
    from tests.audiogen import medley, write_audio

    if not MODEL.is_file():
        pytest.skip(f"{MODEL} missing")
    path = write_audio(tmp_path / "a.wav", medley(25.0, sr=22050), 22050)
    analyzer = Analyzer(AnalysisSettings(model="as-mn04", device="cpu"))
    assert (analyzer.backend.patch_frames, analyzer.backend.patch_hop, analyzer.patch_seconds()) == (
        1000,
        1000,
        10.0,
    )
    first = analyzer.analyze(path)
    assert first.model_id == "as-mn04-1" and first.feature_version == "1"
    assert first.embedding.shape == (512,) and math.isclose(first.analysed, 20.0)
    assert len(first.scores["tags"]) == 527 and all(0.0 <= p <= 1.0 for p in first.scores["tags"].values())
    again = analyzer.analyze(path)
    assert np.array_equal(first.embedding, again.embedding) and first.scores == again.scores
