"""The port of musicnn's VGG taggers (MSD_vgg, MTT_vgg): network, TF mapping, shipped weights.

The comparison with TensorFlow needs the shared reference clips (``$MCBR_SHARED`` or
``../shared``: ``reference/musicnn_reference.json`` and the audio under ``data/``);
the TF outputs themselves are in ``tests/core/data/musicnn_vgg_reference.json``
(``tools/musicnn_vgg_reference.py``). Without the clips those tests skip.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mcbr_core.models.checkpoint import config_from_dict
from mcbr_core.models.musicnn_vgg import MSD_VGG, MusicnnVgg, MusicnnVggConfig, state_dict_from_tf

REPO = Path(__file__).resolve().parents[2]
VGG_REFERENCE = REPO / "tests" / "core" / "data" / "musicnn_vgg_reference.json"
MODEL_FILES = {
    "MSD_vgg": REPO / "models" / "msd-vgg.safetensors",
    "MTT_vgg": REPO / "models" / "mtt-vgg.safetensors",
}


@pytest.fixture(scope="module", params=[MusicnnVggConfig(), MSD_VGG], ids=["mtt", "msd"])
def random_net(request: pytest.FixtureRequest) -> MusicnnVgg:
    torch.manual_seed(0)
    net = MusicnnVgg(request.param)
    for mod in net.modules():  # non-trivial BN statistics, so the eval path is exercised
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
    return net.eval()


def test_shapes_and_size(random_net: MusicnnVgg) -> None:
    x = torch.randn(3, 1, 96, 187)
    with torch.no_grad():
        logits, emb = random_net.forward_features(x)
        assert logits.shape == (3, 50) and emb.shape == (3, 256)
        assert torch.equal(random_net(x), logits) and torch.equal(random_net.embed(x), emb)
        torch.testing.assert_close(
            random_net(x[1:2]), logits[1:2], rtol=1e-5, atol=1e-5
        )  # patches independent
        torch.testing.assert_close(random_net.dense(emb), logits)  # the tags are linear on the embedding
    assert random_net.config.pooled_size == (2, 1)
    assert sum(p.numel() for p in random_net.parameters()) == 605_748
    with pytest.raises(ValueError, match="expected input"):
        random_net(torch.zeros(1, 1, 96, 200))  # the dense layer fixes the length


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="one entry per block"):
        MusicnnVggConfig(pool_time=(4, 2))
    with pytest.raises(ValueError, match="nothing"):
        MusicnnVggConfig(n_frames=20)
    assert config_from_dict(MusicnnVggConfig, json.loads(json.dumps(MSD_VGG.__dict__))) == MSD_VGG


def _to_tf(sd: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Inverse of ``state_dict_from_tf``, written from musicnn's variable names."""
    tf: dict[str, np.ndarray] = {}
    names = ["bn_in"] + [f"blocks.{i}.bn" for i in range(5)]
    for i, prefix in enumerate(names):
        bn = "batch_normalization" if i == 0 else f"batch_normalization_{i}"
        for ours, theirs in (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"),
                             ("running_var", "moving_variance")):  # fmt: skip
            tf[f"{bn}/{theirs}"] = sd[f"{prefix}.{ours}"].numpy()
    for i in range(5):
        tf[f"{i + 1}CNN/kernel"] = (
            sd[f"blocks.{i}.conv.weight"].permute(2, 3, 1, 0).numpy()
        )  # (kh, kw, in, out)
        tf[f"{i + 1}CNN/bias"] = sd[f"blocks.{i}.conv.bias"].numpy()
    tf["dense/kernel"], tf["dense/bias"] = sd["dense.weight"].T.numpy(), sd["dense.bias"].numpy()
    return tf


def test_state_dict_round_trip(random_net: MusicnnVgg) -> None:
    sd = {k: v for k, v in random_net.state_dict().items() if not k.endswith("num_batches_tracked")}
    tf = _to_tf(sd)
    assert (
        len(tf) == 36
        and tf["2CNN/kernel"].shape == (3, 3, 128, 128)
        and tf["dense/kernel"].shape == (256, 50)
    )
    mapped = state_dict_from_tf(tf, random_net.config)
    assert mapped.keys() == sd.keys()
    for k, v in sd.items():
        assert torch.equal(mapped[k], v), k
    net = MusicnnVgg(random_net.config).eval()
    missing, unexpected = net.load_state_dict(mapped, strict=False)
    assert not missing and not unexpected
    with pytest.raises(KeyError):
        state_dict_from_tf({k: v for k, v in tf.items() if k != "3CNN/bias"})


# --------------------------------------------------------------------------- the shipped weights on real clips


@pytest.fixture(scope="module")
def clips() -> tuple[list[dict], list[np.ndarray]]:
    """The VGG reference and each clip's log-mel patches ``(n, 1, 96, 187)``, made by the numpy front end."""
    from mcbr_core.features.musicnn_mel import MusicnnMel
    from mcbr_core.features.patches import patches
    from tools.convert_musicnn import find_shared, load_16k

    shared = find_shared(None)
    if shared is None:
        pytest.skip("shared musicnn reference not found (set MCBR_SHARED)")
    files = json.loads(VGG_REFERENCE.read_text())["files"]
    missing = [f["path"] for f in files if not (shared / "data" / f["path"]).is_file()]
    if missing:
        pytest.skip(f"reference audio missing under {shared / 'data'}: {', '.join(missing)}")
    mel = MusicnnMel()
    return files, [
        patches(mel(load_16k(shared / "data" / f["path"])), patch_frames=187, hop=187) for f in files
    ]


@pytest.mark.shipped
def test_shipped_models_match_tf(
    clips: tuple[list[dict], list[np.ndarray]], capsys: pytest.CaptureFixture[str]
) -> None:
    from mcbr_core.backends.musicnn import musicnn_backend
    from mcbr_core.models.checkpoint import read_card

    files, batches = clips
    lines = []
    top3: dict[tuple[str, str], list[str]] = {}
    for key, path in MODEL_FILES.items():
        # the registered backend's path: card -> family -> strict load (missing/unexpected keys are errors)
        tagger = musicnn_backend(model=path, card=read_card(path), device="cpu", options={})
        labels = tagger.heads["tags"]
        worst = {"prob_mean": 0.0, "prob_patch0": 0.0, "embedding_mean": 0.0}
        for f, x in zip(files, batches, strict=True):
            r = f[key]
            assert x.shape[0] == f["n_patches"]
            out = tagger.infer(x)
            prob, emb = out.heads["tags"], out.embedding
            again = tagger.infer(x)
            assert np.array_equal(again.heads["tags"], prob) and np.array_equal(
                again.embedding, emb
            )  # deterministic
            worst["prob_mean"] = max(worst["prob_mean"], float(np.abs(prob.mean(0) - r["prob_mean"]).max()))
            worst["prob_patch0"] = max(worst["prob_patch0"], float(np.abs(prob[0] - r["prob_patch0"]).max()))
            worst["embedding_mean"] = max(
                worst["embedding_mean"], float(np.abs(emb.mean(0) - r["embedding_mean"]).max())
            )
            top3[key, f["path"]] = [labels[i] for i in np.argsort(-prob.mean(0))[:3]]
        lines.append(
            f"{key}: max |d| over {len(files)} clips: " + ", ".join(f"{k} {v:.2e}" for k, v in worst.items())
        )
        assert worst["prob_mean"] < 1e-5, lines[-1]  # measured 6.5e-7
        assert worst["prob_patch0"] < 1e-5, lines[-1]  # measured 7.0e-7
        assert worst["embedding_mean"] < 5e-5, lines[-1]  # measured 4.0e-6
    assert "classical" in top3["MTT_vgg", "emotify/emotifymusic/classical/1.mp3"]
    assert "rock" in top3["MSD_vgg", "emotify/emotifymusic/rock/2.mp3"]
    assert "electronic" in top3["MSD_vgg", "emotify/emotifymusic/electronic/1.mp3"]
    with capsys.disabled():
        print("\n" + "\n".join(lines))
