"""The port of Won et al.'s taggers: networks, front end, vocabulary, and the shipped weights.

Tests that read the released weights or real music need the shared folder
(``$MCBR_SHARED`` or ``../shared`` beside the repository:
``reference/weights/won-sota-tagging`` and ``data/``); without it they skip.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from mcbr_core.backends.won_vocab import JAMENDO_IDS, JAMENDO_LABELS, MSD_LABELS, jamendo_kinds
from mcbr_core.errors import ConfigError, ModelError
from mcbr_core.features.patches import patches
from mcbr_core.features.spectral import mel_filterbank
from mcbr_core.features.won_mel import WonMel, WonMelConfig
from mcbr_core.models.checkpoint import read_card, save_model
from mcbr_core.models.won import (
    FAMILIES,
    WonCRNN,
    WonCRNNConfig,
    WonFCN,
    WonFCNConfig,
    WonMusicnn,
    WonMusicnnConfig,
    build_won,
    load_won,
)

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("MCBR_SHARED") or REPO.parent / "shared")
WEIGHTS = SHARED / "reference" / "weights" / "won-sota-tagging"
DATA = SHARED / "data"
SHIPPED = [p for p in sorted((REPO / "models").glob("*.safetensors"))
           if read_card(p)["architecture"]["family"].startswith("won-")]  # fmt: skip

needs_weights = pytest.mark.skipif(not WEIGHTS.is_dir(), reason="shared won-sota-tagging weights not found")
needs_data = pytest.mark.skipif(not (DATA / "4q").is_dir(), reason="shared data not found")

# tiny variants: same layout and pools, few channels, so a forward pass costs milliseconds
TINY = {
    "won-fcn": WonFCNConfig(channels=(4, 4, 4, 4, 3)),
    "won-crnn": WonCRNNConfig(channels=(4, 4, 4, 5), gru_hidden=6),
    "won-musicnn": WonMusicnnConfig(timbral_filters=4, temporal_filters=3, backend_channels=5, dense_units=7),
}


def _randomise_bn(net: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial BatchNorm statistics, so the eval path is exercised."""
    torch.manual_seed(0)
    for mod in net.modules():
        if isinstance(mod, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
    return net.eval()


# --------------------------------------------------------------------------- networks


@pytest.mark.parametrize(
    ("family", "n_frames", "dim"),
    [("won-fcn", 1813, 3), ("won-fcn", 1280, 3), ("won-crnn", 1813, 6), ("won-crnn", 96, 6),
     ("won-musicnn", 188, 7), ("won-musicnn", 20, 7)],
)  # fmt: skip
def test_shapes(family: str, n_frames: int, dim: int) -> None:
    torch.manual_seed(0)
    net = _randomise_bn(FAMILIES[family][0](TINY[family]))
    x = torch.randn(2, 1, 96, n_frames) * 10 - 30  # (B, 1, F, T) dB-like
    with torch.inference_mode():
        logits, emb = net.forward_features(x)
        assert logits.shape == (2, 50) and emb.shape == (2, dim)
        assert torch.equal(net(x), logits) and torch.equal(net.embed(x), emb)
        # patches are independent in eval mode: batching does not mix them
        torch.testing.assert_close(net(x[1:2]), logits[1:2], rtol=1e-5, atol=1e-5)


def test_lengths_the_pools_do_not_take() -> None:
    net = WonFCN(TINY["won-fcn"]).eval()
    assert net.valid_frames() == (1280, 2559)
    with torch.inference_mode(), pytest.raises(ValueError, match=r"FCN needs 1280\.\.2559 frames"):
        net(torch.zeros(1, 1, 96, 188))
    with pytest.raises(ValueError, match=r"expected input of shape \(B, 1, 96, T\)"):
        net(torch.zeros(1, 96, 1813))
    with torch.inference_mode(), pytest.raises(ValueError, match="CRNN needs at least 96 frames"):
        WonCRNN(TINY["won-crnn"]).eval()(torch.zeros(1, 1, 96, 95))


def test_configs_validate_and_round_trip() -> None:
    with pytest.raises(ValueError, match="take 96 bands to 2"):
        WonFCNConfig(pools=((2, 4), (2, 4), (2, 4), (3, 5), (2, 4)))
    with pytest.raises(ValueError, match="must be odd"):
        WonMusicnnConfig(temporal_lengths=(128, 65, 33))
    with pytest.raises(ValueError, match="unknown WonCRNNConfig keys: nope"):
        WonCRNNConfig.from_dict({"nope": 1})
    from dataclasses import asdict

    for cfg in TINY.values():
        assert type(cfg).from_dict(json.loads(json.dumps(asdict(cfg)))) == cfg
    with pytest.raises(ValueError, match="unknown Won architecture"):
        build_won("won-nope")


def test_state_dict_keys_are_the_released_ones() -> None:
    """The key names the released state dicts use (checked against them in test_released_weights_load_strictly)."""
    assert {"spec.spectrogram.window", "spec.mel_scale.fb", "spec_bn.running_var", "layer5.conv.weight",
            "dense.weight"} <= set(WonFCN().state_dict())  # fmt: skip
    assert {"layer5.weight_hh_l1", "layer4.bn.weight", "dense.bias"} <= set(WonCRNN().state_dict())
    assert {"layers.0.conv.weight", "layers.4.bn.running_mean", "layer3.conv.weight", "dense1.weight", "bn.weight",
            "dense2.bias"} <= set(WonMusicnn().state_dict())  # fmt: skip
    assert tuple(WonMusicnn().state_dict()["layers.0.conv.weight"].shape) == (204, 1, 67, 7)


def test_model_file_round_trip_and_refusals(tmp_path: Path) -> None:
    from dataclasses import asdict

    net = _randomise_bn(WonCRNN(TINY["won-crnn"]))
    card = {"id": "tiny-1", "name": "tiny", "backend": "won",
            "architecture": {"family": "won-crnn", "config": asdict(net.config)},
            "features": {"extractor": "won-mel", "version": "1", "config": {}},
            "heads": {"tags": [str(i) for i in range(50)]}, "embedding": {"dim": 6, "metric": "angular"}}  # fmt: skip
    path = save_model(tmp_path / "tiny.safetensors", net.state_dict(), card)
    loaded, _ = load_won(path)
    x = torch.randn(2, 1, 96, 200)
    with torch.inference_mode():
        assert torch.equal(loaded(x), net(x))
    bad = save_model(
        tmp_path / "bad.safetensors", net.state_dict(), {**card, "architecture": {"family": "won-fcn"}}
    )
    with pytest.raises(ModelError, match="weights do not fit won-fcn"):
        load_won(bad)
    bad = save_model(tmp_path / "bad2.safetensors", net.state_dict(),
                     {**card, "architecture": {"family": "won-crnn", "config": {"gru": 1}}})  # fmt: skip
    with pytest.raises(ModelError, match="does not fit a Won tagger"):
        load_won(bad)


# --------------------------------------------------------------------------- front end


def test_front_end_shape_and_torch_agreement() -> None:
    rng = np.random.default_rng(0)
    y = (0.3 * rng.standard_normal(16000 * 3)).astype(np.float32)
    mel = WonMel(WonMelConfig(patch_frames=188, patch_hop=188))
    feats = mel(y)
    assert feats.shape == (1, 96, 1 + len(y) // 256) and feats.dtype == np.float32
    assert mel.frames_per_second == 62.5 and mel.version == "1"
    with torch.inference_mode():
        ref = WonFCN().spec(torch.from_numpy(y)[None]).numpy()  # (1, 96, T): torchaudio's recipe in torch
    np.testing.assert_allclose(feats, ref, atol=1e-3)  # float64 vs float32 STFT
    assert patches(feats, patch_frames=188, hop=188).shape == (1, 1, 96, 188)
    # silence sits at the floor, 10 log10(1e-10); a few samples still give frames
    assert np.all(mel(np.zeros(1000, np.float32)) == -100.0)
    assert mel(np.ones(10, np.float32)).shape == (1, 96, 2)


def test_front_end_config_is_validated() -> None:
    from mcbr_core.features.builtin import won_mel

    with pytest.raises(ConfigError, match="unknown feature options"):
        won_mel({"n_fft": 512, "bogus": 1})
    with pytest.raises(ConfigError, match="fmax"):
        won_mel({"fmax": 9000.0})
    assert won_mel({"patch_frames": 188, "patch_hop": 188}).config.patch_frames == 188


def test_backend_and_extractor_are_registered() -> None:
    from mcbr_core.plugins import Plugins

    plugins = Plugins(entry_points=False)
    assert "won" in plugins.registry("model backend").names()
    assert "won-mel" in plugins.registry("feature extractor").names()


# --------------------------------------------------------------------------- vocabulary


def test_vocabulary() -> None:
    assert len(set(JAMENDO_LABELS)) == len(JAMENDO_IDS) == 50
    assert JAMENDO_IDS == tuple(sorted(JAMENDO_IDS))  # the models' output order (LabelBinarizer sorts)
    assert JAMENDO_LABELS[JAMENDO_IDS.index("genre---hiphop")] == "hip hop"
    kinds = jamendo_kinds()
    assert kinds["metal"] == kinds["classical"] == kinds["hip hop"] == "genre"
    assert kinds["happy"] == kinds["relaxing"] == kinds["chillout"] == "mood"
    assert kinds["piano"] == kinds["film"] == "other"
    if WEIGHTS.is_dir():
        tags = json.loads((WEIGHTS / "tags.json").read_text())
        assert JAMENDO_IDS == tuple(sorted(tags["jamendo"])) and MSD_LABELS == tuple(tags["msd"])


# --------------------------------------------------------------------------- released and shipped weights

RELEASED = {"jamendo-fcn": WonFCN, "msd-fcn": WonFCN, "jamendo-crnn": WonCRNN, "msd-crnn": WonCRNN,
            "jamendo-musicnn": WonMusicnn}  # fmt: skip


def _released(name: str) -> dict[str, torch.Tensor]:
    data, arch = name.split("-")
    return torch.load(WEIGHTS / data / arch / "best_model.pth", weights_only=True, map_location="cpu")


@needs_weights
@pytest.mark.shipped
@pytest.mark.parametrize("name", list(RELEASED))
def test_released_weights_load_strictly(name: str) -> None:
    sd = _released(name)
    net = RELEASED[name]()
    assert net.load_state_dict(sd, strict=True)  # no missing or unexpected keys
    fb = mel_filterbank(sr=16000, n_fft=512, n_mels=96, fmin=0.0, fmax=8000.0, htk=True, norm=None).T
    np.testing.assert_allclose(sd["spec.mel_scale.fb"].numpy(), fb, atol=2e-5, rtol=0)
    assert torch.equal(sd["spec.spectrogram.window"], torch.hann_window(512))


@needs_weights
@pytest.mark.shipped
@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_file_equals_the_released_weights(path: Path) -> None:
    shipped, card = load_won(path)
    ref = RELEASED[path.stem]()
    ref.load_state_dict(_released(path.stem), strict=True)
    ref.eval()
    x = torch.randn(2, 1, 96, shipped.config.n_frames, generator=torch.Generator().manual_seed(0)) * 20 - 20
    with torch.inference_mode():
        (la, ea), (lb, eb) = ref.forward_features(x), shipped.forward_features(x)
        again = shipped.forward_features(x)
    assert float((torch.sigmoid(la) - torch.sigmoid(lb)).abs().max()) < 1e-5
    assert float((ea - eb).abs().max()) < 1e-5
    assert torch.equal(again[0], lb) and torch.equal(again[1], eb)  # deterministic under inference_mode
    assert card["heads"]["tags"] == list(JAMENDO_LABELS if path.stem.startswith("jamendo") else MSD_LABELS)
    assert set(card["tag_kinds"]["tags"]) == set(card["heads"]["tags"])
    assert card["licence"]["spdx"] == "MIT" and (REPO / "models" / "LICENSE-won.md").is_file()


#: real clips (the shared GTZAN has only classical and one country clip; 4Q holds the rest)
CLIPS = {
    "metal": "4q/MER_audio_taffc_dataset/Q2/MT0006746691.mp3",  # Disturbed, "Voices"
    "classical": "gtzan/genres/classical/classical.00000.mp3",
    "hiphop": "4q/MER_audio_taffc_dataset/Q2/MT0006939177.mp3",  # Onyx, "Phat ('N' All Dat)"
    "reggae": "4q/MER_audio_taffc_dataset/Q4/MT0000202045.mp3",  # Bob Marley & the Wailers, "Exodus"
}
#: what each model must rank in its top 3 (MSD's Last.fm tags have no classical or reggae tag)
EXPECT = {
    "jamendo": {"metal": {"metal", "rock"}, "classical": {"classical", "orchestral"}, "hiphop": {"hip hop"},
                "reggae": {"reggae"}},
    "msd": {"metal": {"metal", "heavy metal", "hard rock"}, "classical": {"instrumental"}, "hiphop": {"Hip-Hop"}},
}  # fmt: skip


@pytest.fixture(scope="module")
def first_chunks() -> dict[str, np.ndarray]:
    """The first 29 s of each real clip at 16 kHz."""
    from mcbr_core.audio.decode import PyAVDecoder, SoundfileDecoder, load_audio

    decoders = [SoundfileDecoder(), PyAVDecoder()]
    return {k: load_audio(DATA / v, sr=16000, decoders=decoders, duration=29.0) for k, v in CLIPS.items()}


@needs_data
@pytest.mark.shipped
@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_top_tags_make_musical_sense(path: Path, first_chunks: dict[str, np.ndarray]) -> None:
    net, card = load_won(path)
    n = net.config.n_frames
    mel = WonMel(WonMelConfig(**card["features"]["config"]))
    labels = card["heads"]["tags"]
    x = np.concatenate(
        [patches(mel(y), patch_frames=n, hop=n)[:1] for y in first_chunks.values()]
    )  # (4, 1, 96, n)
    with torch.inference_mode():
        probs = torch.sigmoid(net(torch.from_numpy(x))).numpy()  # (4, 50)
    for genre, p in zip(first_chunks, probs, strict=True):
        top3 = {labels[i] for i in np.argsort(-p)[:3]}
        want = EXPECT[path.stem.split("-")[0]].get(genre)
        if want:
            assert top3 & want, f"{path.stem} on {genre}: top 3 {top3}"


@pytest.mark.shipped
@pytest.mark.parametrize("path", SHIPPED[:1], ids=lambda p: p.stem)
def test_analyzer_end_to_end(path: Path, make_audio) -> None:
    from mcbr_core.analysis import Analyzer
    from mcbr_core.settings import AnalysisSettings

    analyzer = Analyzer(AnalysisSettings(model=path.stem, device="cpu", max_patches=2, window_patches=1))
    assert analyzer.backend.patch_frames == 1813 and analyzer.extractor.name == "won-mel"
    long = analyzer.analyze(make_audio("long.flac", seconds=90.0, sr=16000))  # > 3 patches: 2 windows of one
    assert long.model_id == f"{path.stem}-1" and len(long.scores["tags"]) == 50
    assert long.analysed == pytest.approx(2 * 1813 / 62.5)
    assert long.embedding.shape == (analyzer.backend.embedding_dim,) and np.isfinite(long.embedding).all()
    short = analyzer.analyze(make_audio("short.wav", seconds=0.5))  # repeated to fill one 29-s patch
    assert short.analysed == pytest.approx(1813 / 62.5) and np.isfinite(short.embedding).all()
    assert all(0.0 <= p <= 1.0 for p in short.scores["tags"].values())
