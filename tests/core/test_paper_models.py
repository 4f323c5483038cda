"""The paper architectures: a few optimisation steps, embedding sizes, checkpoints, paper facts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mcbr_core.errors import ConfigError
from mcbr_core.models.artist_embedding import (
    ArtistEmbedding,
    ArtistEmbeddingConfig,
    negative_cosine_loss,
    related_artist_loss,
)
from mcbr_core.models.blocks import LRN, Conv2dSame, KMaxPool1d, MaxPool2dSame, count_parameters
from mcbr_core.models.checkpoint import load_model, save_model
from mcbr_core.models.registry import (
    architecture_name,
    build_model,
    builtin_architectures,
    config_dict,
    embedding_dim,
)
from mcbr_core.plugins import Plugins

#: name -> (tiny config, input shape (C, F, T), embedding size)
TINY = {
    "xing": ({"n_classes": 3, "n_bins": 40, "n_frames": 40, "fc1": 32}, (1, 40, 40), 192),
    "tower": ({"n_classes": 3, "n_frames": 640, "channels": [8, 8, 8, 8, 8, 8]}, (1, 128, 640), 32),
    "zhang_kcnn": ({"n_classes": 3, "n_words": 16, "word_dim": 8, "conv_units": 12}, (1, 1, 12), 300),
    "whitell_simple": (
        {"n_classes": 3, "feature": "chroma", "n_bins": 12, "n_frames": 32},
        (1, 12, 32),
        1024,
    ),
    "whitell_time": ({"n_classes": 3, "n_bins": 96, "n_frames": 100}, (1, 96, 100), 256),
    "whitell_freq": ({"n_classes": 3, "n_bins": 96, "n_frames": 100}, (1, 96, 100), 256),
    "whitell_timefreq": ({"n_classes": 3, "n_bins": 96, "n_frames": 100, "dropout": 0.0}, (1, 96, 100), 128),
    "whitell_timefreqavg": ({"n_classes": 3, "n_bins": 96, "n_frames": 100}, (1, 96, 100), 512),
}


def make_input(name: str, batch: int = 4, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    shape = TINY[name][1]
    if name == "zhang_kcnn":
        return torch.randint(0, 16, (batch, *shape), generator=gen).float()  # (B, 1, 1, S) word ids
    return torch.randn(batch, *shape, generator=gen)


def tiny(name: str, **extra) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(name, {**TINY[name][0], **extra}, device="cpu")


def test_every_architecture_has_a_tiny_case() -> None:
    assert set(TINY) == {a.name for a in builtin_architectures()}
    registered = Plugins(entry_points=False).registry("architecture").names()
    assert set(registered) == {*TINY, "dense-head"}  # registered through the hook, like a third party's


@pytest.mark.parametrize("name", sorted(TINY))
def test_a_few_optimisation_steps(name: str) -> None:
    model = tiny(name)
    x, y = make_input(name), torch.tensor([0, 1, 2, 1])
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(trainable, lr=1e-3)
    losses = []
    for step in range(3):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        if step == 0:
            grads = [p.grad for p in trainable]
            assert all(g is not None and torch.isfinite(g).all() for g in grads)
            assert sum(float(g.abs().sum()) for g in grads) > 0
        opt.step()
        losses.append(loss.item())
    assert np.isfinite(losses).all()
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("name", sorted(TINY))
def test_embed_is_the_penultimate_layer(name: str) -> None:
    model = tiny(name).eval()
    x = make_input(name, batch=2)
    with torch.inference_mode():
        emb, logits = model.embed(x), model(x)
    assert emb.shape == (2, TINY[name][2]) == (2, embedding_dim(model))
    assert logits.shape == (2, 3)
    # The logits are one layer away: Tower's embedding is its latent (the predictor follows), and
    # TimeFreqAvg averages two heads, so it has no single penultimate layer.
    head = {"tower": getattr(model, "predict", None), "whitell_timefreqavg": None}.get(
        name, getattr(model, "out", None)
    )
    if head is not None:
        with torch.inference_mode():
            np.testing.assert_allclose(head(emb).numpy(), logits.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(TINY))
def test_checkpoint_round_trips(tmp_path: Path, name: str) -> None:
    model = tiny(name).eval()
    x = make_input(name, batch=2)
    with torch.inference_mode():
        before = model(x)
    card = {
        "id": f"test-{name}-1",
        "name": f"test-{name}",
        "backend": "trained",
        "architecture": {"family": architecture_name(model), "config": config_dict(model)},
        "features": {"extractor": "tower-mel", "version": "1", "config": {}},
        "heads": {"genre": ["a", "b", "c"]},
        "embedding": {"dim": embedding_dim(model), "layer": "embed", "metric": "cosine"},
    }
    path = save_model(tmp_path / "model.safetensors", model.state_dict(), card)
    tensors, card = load_model(path)
    again = build_model(card["architecture"]["family"], card["architecture"]["config"]).eval()
    again.load_state_dict(tensors)
    with torch.inference_mode():
        assert torch.equal(again(x), before)

    torch.save(model.state_dict(), tmp_path / "state.pt")
    third = build_model(architecture_name(model), config_dict(model)).eval()
    third.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    with torch.inference_mode():
        assert torch.equal(third(x), before)


# -- paper facts ------------------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "feature", "n_bins", "n_classes", "expected"),
    [
        # Whitell, Table 3 (16 FMA-medium genres)
        ("simple", "mel", 256, 16, 733_736),
        ("time", "mel", 256, 16, 55_700),
        ("freq", "mel", 256, 16, 61_574),
        ("timefreq", "mel", 256, 16, 160_682),
        ("time", "stft", 2049, 16, 84_500),
        ("freq", "stft_half", 1024, 16, 61_970),
        ("time", "cqt", 168, 16, 54_292),
        ("timefreq", "chroma", 12, 16, 157_200),
        # Table 5 (161 FMA-large genres) and Table 6 (800-d artist embeddings)
        ("timefreqavg", "stft_half", 1024, 161, 204_488),
        ("time", "mel", 256, 800, 257_188),
        ("timefreqavg", "mel", 256, 800, 520_250),
    ],
)
def test_whitell_parameter_counts_match_the_thesis(variant, feature, n_bins, n_classes, expected) -> None:
    config = {"feature": feature, "n_bins": n_bins, "n_frames": 643, "n_classes": n_classes}
    model = build_model(f"whitell_{variant}", config)
    assert count_parameters(model, buffers=True) == expected  # Keras counts BatchNorm's moving statistics


def test_tower_encoder_reduces_the_paper_input_to_one_vector() -> None:
    from mcbr_core.models.tower import TowerConfig

    config = TowerConfig()
    assert config.sizes() == [(64, 259), (32, 129), (16, 64), (8, 32), (4, 16), (2, 8)]
    assert config.latent_map_size() == (1, 5)  # then the paper's 1 x 5 max pooling


def test_tower_decoder_reconstructs_the_input_shape() -> None:
    model = tiny("tower", decoder=True)
    x = make_input("tower", batch=2)
    recon = model.decode(model.embed(x))
    assert recon.shape == x.shape
    loss = F.mse_loss(recon, x)
    loss.backward()
    assert torch.isfinite(loss.detach()) and model.dec_in.weight.grad.abs().sum() > 0
    with pytest.raises(RuntimeError, match="no decoder head"):
        tiny("tower").decode(torch.zeros(1, 32))


def test_timefreq_trains_only_its_head_on_loaded_branches() -> None:
    time_model, freq_model = tiny("whitell_time"), tiny("whitell_freq")
    model = tiny("whitell_timefreq")
    model.load_branches(time_model, freq_model)
    assert torch.equal(model.time.out.weight, time_model.out.weight)
    model.train()
    assert not model.time.training and not model.freq.training  # frozen BatchNorm statistics
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("head.", "out.")) for n in trainable)


def test_zhang_lookup_table_starts_from_the_codebook() -> None:
    model = tiny("zhang_kcnn")
    centroids = np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32)
    model.init_lookup(centroids)
    np.testing.assert_array_equal(model.lookup.weight.detach().numpy(), centroids)
    with pytest.raises(ConfigError, match="does not fit a lookup table"):
        model.init_lookup(centroids[:, :4])
    with pytest.raises(ValueError, match=r"word ids must lie in \[0, 16\)"):
        model(torch.full((1, 1, 1, 8), 16.0))
    with pytest.raises(ValueError, match="at least k=5 steps"):
        model(torch.zeros(1, 1, 1, 4))
    frozen = tiny("zhang_kcnn", freeze_lookup=True)
    assert not frozen.lookup.weight.requires_grad


def test_k_max_pooling_keeps_the_order() -> None:
    x = torch.tensor([[[3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]]])
    assert KMaxPool1d(3)(x).tolist() == [[[5.0, 9.0, 6.0]]]


def test_lrn_uses_alexnet_constants() -> None:
    x = torch.randn(1, 8, 3, 3)
    sq = F.pad(x**2, (0, 0, 0, 0, 2, 2))  # channels padded by size // 2
    window = torch.stack([sq[:, c : c + 5].sum(dim=1) for c in range(8)], dim=1)
    expected = x / (2.0 + 1e-4 * window) ** 0.75  # AlexNet: k=2, alpha=1e-4 per element, beta=0.75
    torch.testing.assert_close(LRN()(x), expected)


def test_same_padding_layers_round_up() -> None:
    x = torch.randn(1, 2, 7, 10)
    assert Conv2dSame(2, 3, (3, 4), (2, 3))(x).shape == (1, 3, 4, 4)
    assert MaxPool2dSame(3, 2)(x).shape == (1, 2, 4, 5)


@pytest.mark.parametrize(
    ("name", "config", "match"),
    [
        ("xing", {"n_class": 3}, "unknown config keys"),
        ("resnet", {}, "unknown architecture"),
        ("whitell_time", {"variant": "freq"}, "contradicts the architecture name"),
        ("whitell_time", {"n_frames": 50}, "smaller than the largest time divisor"),
        ("whitell_simple", {"n_bins": 64}, "too small for Simple"),
        ("whitell_freq", {"feature": "wav"}, "feature must be one of"),
        ("tower", {"n_frames": 600}, "too small for the encoder"),
        ("xing", {"n_bins": 4}, "too small for the two"),
        ("xing", {"dropout": 1.5}, "dropout must lie in"),
        ("zhang_kcnn", {"window": 4}, "window must be odd"),
    ],
)
def test_configs_are_validated(name: str, config: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        build_model(name, config)


def test_artist_embeddings_pull_related_artists_together() -> None:
    torch.manual_seed(0)
    clusters, size = 4, 5
    n = clusters * size
    related = [(a, b) for a in range(n) for b in range(n) if a != b and a // size == b // size]
    pairs = torch.tensor(related)  # (P, 2)
    model = ArtistEmbedding(ArtistEmbeddingConfig(n_artists=n, dim=16))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(1)
    first = None
    for _ in range(60):
        opt.zero_grad()
        loss = related_artist_loss(model, pairs[:, 0], pairs[:, 1], generator=gen)
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < first
    with torch.inference_mode():
        e = F.normalize(model.embed(torch.arange(n)), dim=1)
        cos = e @ e.T  # (n, n)
    same = torch.tensor([[a // size == b // size and a != b for b in range(n)] for a in range(n)])
    other = torch.tensor([[a // size != b // size for b in range(n)] for a in range(n)])
    assert float(cos[same].mean()) > float(cos[other].mean()) + 0.5


def test_negative_cosine_loss_regresses_audio_onto_artist_embeddings() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert float(negative_cosine_loss(a, 3 * a)) == pytest.approx(-1.0)
    assert float(negative_cosine_loss(a, -a)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="differ in shape"):
        negative_cosine_loss(a, a[:, :1])

    model = tiny("whitell_time", n_classes=8)  # output = a predicted 8-d artist embedding
    x = make_input("whitell_time")
    target = torch.randn(4, 8, generator=torch.Generator().manual_seed(2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(4):
        opt.zero_grad()
        loss = negative_cosine_loss(model(x), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
