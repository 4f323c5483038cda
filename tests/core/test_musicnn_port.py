"""The musicnn port: checkpoint reader, network, features, and the shipped weights.

The reference comparison needs the shared musicnn reference
(``$MCBR_SHARED`` or ``../shared`` beside the repository: ``reference/musicnn_reference.json``
and the audio under ``data/``) and the converted ``models/*-musicnn.safetensors``;
without them those tests skip.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from mcbr_core.features.musicnn_mel import MusicnnMel, MusicnnMelConfig
from mcbr_core.features.patches import patches
from mcbr_core.features.spectral import mel_filterbank, stft_power
from mcbr_core.models.checkpoint import load_model, save_model
from mcbr_core.models.musicnn import Musicnn, MusicnnConfig, state_dict_from_tf
from tools.tfcheckpoint import read_tf_bundle

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("MCBR_SHARED") or REPO.parent / "shared")
REFERENCE = SHARED / "reference" / "musicnn_reference.json"
MODEL_FILES = {
    "MSD_musicnn": REPO / "models" / "msd-musicnn.safetensors",
    "MTT_musicnn": REPO / "models" / "mtt-musicnn.safetensors",
}


# --------------------------------------------------------------------------- network


@pytest.fixture(scope="module")
def random_net() -> Musicnn:
    torch.manual_seed(0)
    net = Musicnn(MusicnnConfig())
    # Non-trivial BN statistics, so the eval path is exercised.
    for mod in net.modules():
        if isinstance(mod, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
    return net.eval()


@pytest.mark.parametrize("n_frames", [187, 200, 5])
def test_shapes(random_net: Musicnn, n_frames: int) -> None:
    x = torch.randn(3, 1, 96, n_frames)
    with torch.no_grad():
        logits, emb = random_net.forward_features(x)
        assert logits.shape == (3, 50) and emb.shape == (3, 200)
        assert torch.equal(random_net(x), logits)
        assert torch.equal(random_net.embed(x), emb)
        # Patches are independent in eval mode: batching does not mix them.
        torch.testing.assert_close(random_net(x[1:2]), logits[1:2], rtol=1e-5, atol=1e-5)


def test_bad_input_shape(random_net: Musicnn) -> None:
    with pytest.raises(ValueError, match="expected input"):
        random_net(torch.zeros(1, 96, 187))


def test_parameter_count() -> None:
    sd = Musicnn().state_dict()
    stats = sum(v.numel() for k, v in sd.items() if k.endswith(("running_mean", "running_var")))
    trainable = sum(p.numel() for p in Musicnn().parameters())
    assert (trainable, stats) == (787_159, 4_920)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths:UserWarning")
def test_temporal_padding_is_tf_same() -> None:
    """Even temporal kernels pad one more frame at the end, like TF SAME and torch 'same'."""
    torch.manual_seed(1)
    net = Musicnn().eval()
    x = torch.randn(2, 1, 150, 96)  # (B, 1, T, F)
    for blk in net.temporal:
        ref = torch.nn.functional.conv2d(x, blk.conv.weight, blk.conv.bias, padding="same")  # (B, 51, T, F)
        with torch.no_grad():
            ours = blk(x)
            expected = blk.bn(torch.relu(ref)).amax(dim=3)
        torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)


def _to_tf(sd: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Inverse of ``state_dict_from_tf`` (written independently, by TF creation order)."""
    tf: dict[str, np.ndarray] = {}

    def bn(prefix: str, name: str) -> None:
        for ours, theirs in (
            ("weight", "gamma"),
            ("bias", "beta"),
            ("running_mean", "moving_mean"),
            ("running_var", "moving_variance"),
        ):
            tf[f"{name}/{theirs}"] = sd[f"{prefix}.{ours}"].numpy()

    bn("bn_in", "batch_normalization")
    blocks = [
        "timbral.0",
        "timbral.1",
        "temporal.0",
        "temporal.1",
        "temporal.2",
        "midend.0",
        "midend.1",
        "midend.2",
    ]
    for i, prefix in enumerate(blocks):
        conv = "conv2d" if i == 0 else f"conv2d_{i}"
        w = sd[f"{prefix}.conv.weight"]
        if prefix.startswith("midend"):
            w = w.permute(2, 1, 0)[:, :, None, :]  # (k, C_in, 1, out)
        else:
            w = w.permute(2, 3, 1, 0)  # (kh, kw, in, out)
        tf[f"{conv}/kernel"] = w.numpy()
        tf[f"{conv}/bias"] = sd[f"{prefix}.conv.bias"].numpy()
        bn(f"{prefix}.bn", f"batch_normalization_{i + 1}")
    bn("bn_pool", "batch_normalization_9")
    bn("bn_dense", "batch_normalization_10")
    tf["dense/kernel"], tf["dense/bias"] = sd["dense.weight"].T.numpy(), sd["dense.bias"].numpy()
    tf["dense_1/kernel"], tf["dense_1/bias"] = sd["out.weight"].T.numpy(), sd["out.bias"].numpy()
    return tf


def test_state_dict_round_trip(random_net: Musicnn, tmp_path: Path) -> None:
    sd = {k: v for k, v in random_net.state_dict().items() if not k.endswith("num_batches_tracked")}
    tf = _to_tf(sd)
    assert len(tf) == 64
    assert tf["conv2d_5/kernel"].shape == (7, 561, 1, 64) and tf["dense/kernel"].shape == (1506, 200)
    mapped = state_dict_from_tf(tf)
    assert mapped.keys() == sd.keys()
    for k, v in sd.items():
        assert torch.equal(mapped[k], v), k

    card = {
        "id": "t-1",
        "name": "t",
        "backend": "musicnn",
        "architecture": {"family": "musicnn", "config": {}},
        "features": {},
        "heads": {"tags": [str(i) for i in range(50)]},
        "embedding": {"dim": 200},
    }
    loaded, _ = load_model(save_model(tmp_path / "m.safetensors", mapped, card))
    net = Musicnn().eval()
    net.load_state_dict(loaded, strict=True)
    x = torch.randn(2, 1, 96, 187)
    with torch.no_grad():
        assert torch.equal(net(x), random_net(x))


def test_config_from_dict() -> None:
    from dataclasses import asdict

    cfg = MusicnnConfig()
    assert MusicnnConfig.from_dict(json.loads(json.dumps(asdict(cfg)))) == cfg
    with pytest.raises(ValueError, match="unknown"):
        MusicnnConfig.from_dict({"bogus": 1})


# --------------------------------------------------------------------------- TF bundle reader


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num: int, wire: int, payload: bytes) -> bytes:
    return _varint(num << 3 | wire) + payload


def _block(entries: list[tuple[bytes, bytes]], restart_every: int = 2) -> bytes:
    body, restarts, prev = bytearray(), [], b""
    for i, (key, value) in enumerate(entries):
        shared = 0
        if i % restart_every == 0:
            restarts.append(len(body))
        else:
            while shared < min(len(key), len(prev)) and key[shared] == prev[shared]:
                shared += 1
        body += _varint(shared) + _varint(len(key) - shared) + _varint(len(value)) + key[shared:] + value
        prev = key
    for r in restarts or [0]:
        body += struct.pack("<I", r)
    return bytes(body + struct.pack("<I", len(restarts or [0])))


def _write_bundle(
    prefix: str | Path, tensors: dict[str, np.ndarray], *, dtype_enum: int = 1, block_type: int = 0
) -> None:
    """A minimal TF V2 bundle writer, to test the reader without TensorFlow."""
    version = _field(1, 0, _varint(1))  # VersionDef.producer = 1
    header = _field(1, 0, _varint(1)) + _field(3, 2, _varint(len(version)) + version)  # num_shards, version
    data, entries = bytearray(), [(b"", header)]
    for name in sorted(tensors):
        raw = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        shape = b"".join(
            _field(2, 2, _varint(len(d)) + d) for d in (_field(1, 0, _varint(s)) for s in tensors[name].shape)
        )
        entry = _field(1, 0, _varint(dtype_enum)) + _field(2, 2, _varint(len(shape)) + shape)
        if data:  # proto3 omits offset 0
            entry += _field(4, 0, _varint(len(data)))
        entry += _field(5, 0, _varint(len(raw))) + _field(6, 5, struct.pack("<I", 0))  # CRC unchecked
        entries.append((name.encode(), entry))
        data += raw
    out = bytearray()

    def put(block: bytes) -> bytes:
        handle = _varint(len(out)) + _varint(len(block))
        trailer = bytes([block_type]) + struct.pack("<I", 0)  # CRC unchecked
        out.extend(block + trailer)
        return handle

    data_handle = put(_block(entries))
    meta_handle = put(_block([]))
    index_handle = put(_block([(b"e", data_handle)]))
    footer = (meta_handle + index_handle).ljust(40, b"\0") + struct.pack("<Q", 0xDB4775248B80FB57)
    Path(str(prefix) + ".index").write_bytes(bytes(out) + footer)
    Path(str(prefix) + ".data-00000-of-00001").write_bytes(bytes(data))


@pytest.fixture()
def toy_tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "conv2d/bias": rng.standard_normal(3).astype(np.float32),
        "conv2d/kernel": rng.standard_normal((2, 3, 1, 3)).astype(np.float32),
        "conv2d/kernel/Adam": rng.standard_normal((2, 3, 1, 3)).astype(np.float32),
        "conv2d_1/kernel": rng.standard_normal((4, 5)).astype(np.float32),
        "beta1_power": np.array(0.9, dtype=np.float32),
    }


def test_read_bundle(tmp_path: Path, toy_tensors: dict[str, np.ndarray]) -> None:
    _write_bundle(tmp_path / "ckpt", toy_tensors)
    got = read_tf_bundle(tmp_path / "ckpt")
    assert list(got) == ["conv2d/bias", "conv2d/kernel", "conv2d_1/kernel"]  # optimizer state skipped
    for k, v in got.items():
        np.testing.assert_array_equal(v, toy_tensors[k])
    full = read_tf_bundle(str(tmp_path / "ckpt"), include_optimizer=True)
    assert full.keys() == toy_tensors.keys() and full["beta1_power"].shape == ()


def test_read_bundle_directory_prefix(tmp_path: Path, toy_tensors: dict[str, np.ndarray]) -> None:
    (tmp_path / "model").mkdir()
    _write_bundle(f"{tmp_path / 'model'}/", toy_tensors)  # dot-files, as musicnn ships them
    assert (tmp_path / "model" / ".index").is_file()
    assert read_tf_bundle(tmp_path / "model").keys() == read_tf_bundle(str(tmp_path / "model") + "/").keys()


def test_read_bundle_rejects(tmp_path: Path, toy_tensors: dict[str, np.ndarray]) -> None:
    _write_bundle(tmp_path / "c", toy_tensors)
    _write_bundle(tmp_path / "z", toy_tensors, block_type=1)
    with pytest.raises(ValueError, match="compressed"):
        read_tf_bundle(tmp_path / "z")
    _write_bundle(tmp_path / "i", toy_tensors, dtype_enum=3)
    with pytest.raises(ValueError, match="DT_INT32"):
        read_tf_bundle(tmp_path / "i")
    index = tmp_path / "c.index"
    index.write_bytes(index.read_bytes()[:-1] + b"\0")
    with pytest.raises(ValueError, match="magic"):
        read_tf_bundle(tmp_path / "c")


# --------------------------------------------------------------------------- features


def test_stft_power_matches_direct_dft() -> None:
    rng = np.random.default_rng(2)
    y = rng.standard_normal(1000).astype(np.float32)
    s = stft_power(y, n_fft=64, hop_length=16)
    assert s.shape == (33, 1 + 1000 // 16) and s.dtype == np.float32
    yp = np.pad(y.astype(np.float64), 32)
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(64) / 64)
    k = np.arange(33)[:, None] * np.arange(64)[None, :]
    for t in (0, 7, s.shape[1] - 1):
        frame = yp[16 * t : 16 * t + 64] * win
        ref = np.abs(np.exp(-2j * np.pi * k / 64) @ frame) ** 2
        np.testing.assert_allclose(s[:, t], ref, rtol=1e-4, atol=1e-4)
    # frames are transformed in chunks of 4096 at n_fft=512: no seam at the chunk boundary
    long = rng.standard_normal(4200 * 256).astype(np.float32)
    whole = stft_power(long, n_fft=512, hop_length=256)
    assert whole.shape == (257, 4201)
    part = stft_power(long[4089 * 256 : 4110 * 256], n_fft=512, hop_length=256)  # frame j = frame 4089 + j
    np.testing.assert_allclose(part[:, 1:15], whole[:, 4090:4104], rtol=1e-6, atol=1e-6)


def test_spectral_validation() -> None:
    with pytest.raises(ValueError, match="hop_length"):
        stft_power(np.zeros(100, np.float32), n_fft=64, hop_length=0)
    with pytest.raises(ValueError, match="mono"):
        stft_power(np.zeros((2, 100), np.float32), n_fft=64, hop_length=16)
    with pytest.raises(ValueError, match="pad_mode"):
        stft_power(np.zeros(100, np.float32), n_fft=64, hop_length=16, pad_mode="edge")
    with pytest.raises(ValueError, match="fmin"):
        mel_filterbank(sr=16000, n_fft=512, n_mels=96, fmin=9000.0, fmax=8000.0)
    with pytest.raises(ValueError, match="norm"):
        mel_filterbank(sr=16000, n_fft=512, n_mels=96, norm="l2")


def test_mel_filterbank() -> None:
    fb = mel_filterbank(sr=16000, n_fft=512, n_mels=96, fmax=8000.0)
    assert fb.shape == (96, 257) and fb.dtype == np.float32 and not fb.flags.writeable
    assert fb is mel_filterbank(sr=16000, n_fft=512, n_mels=96, fmax=8000.0)  # cached
    assert (fb >= 0).all() and (fb.sum(axis=1) > 0).all()
    # Slaney area norm: each triangle integrates to ~1 over Hz (bin width 31.25 Hz)
    areas = fb.sum(axis=1) * 16000 / 512
    np.testing.assert_allclose(areas[10:], 1.0, rtol=0.1)  # sampled triangles: ~7 % off at the 1-kHz kink
    peak = mel_filterbank(sr=16000, n_fft=512, n_mels=96, norm=None)
    assert peak.max() <= 1.0 and peak.max() > 0.9


def test_patches() -> None:
    feats = np.random.default_rng(3).standard_normal((1, 96, 1876)).astype(np.float32)
    p = patches(feats, patch_frames=187, hop=187)
    assert p.shape == (10, 1, 96, 187) and p.flags.c_contiguous
    np.testing.assert_array_equal(p[3], feats[:, :, 561:748])
    assert patches(feats, patch_frames=187, hop=93).shape[0] == (1876 - 187) // 93 + 1
    short = feats[:, :, :50]
    ps = patches(short, patch_frames=187, hop=187)
    assert ps.shape == (1, 1, 96, 187)
    np.testing.assert_array_equal(ps[0, :, :, 50:100], short)  # repeated, not zero-padded
    assert patches(feats[:, :, :187], patch_frames=187, hop=187).shape[0] == 1
    with pytest.raises(ValueError):
        patches(feats[:, :, :0], patch_frames=187, hop=187)


def test_musicnn_mel_basic() -> None:
    y = (0.1 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)
    x = MusicnnMel()(y)
    assert x.shape == (1, 96, 1 + 16000 // 256) and x.dtype == np.float32
    assert np.isfinite(x).all() and x.min() >= 0
    loud = MusicnnMel()(100 * y)  # mel power far above 6.55: no float16 overflow
    assert np.isfinite(loud).all()
    assert MusicnnMelConfig().patch_frames == 187


# --------------------------------------------------------------------------- against the TF reference


def _load_16k(path: Path) -> np.ndarray:
    """librosa.load(path, sr=16000) as librosa >= 0.10 does it: mono mean, soxr HQ, fixed length."""
    import soundfile as sf
    import soxr

    y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    y = y.mean(axis=1)  # (n,)
    n = math.ceil(y.shape[0] * 16000 / sr)
    if sr != 16000:
        y = soxr.resample(y, sr, 16000, quality="HQ")
    return np.pad(y[:n], (0, max(0, n - y.shape[0]))).astype(np.float32)


@pytest.fixture(scope="module")
def reference() -> tuple[dict, list[np.ndarray]]:
    """The reference JSON and the log-mel of each of its clips."""
    if not REFERENCE.is_file():
        pytest.skip(f"musicnn reference not found at {REFERENCE} (set MCBR_SHARED)")
    ref = json.loads(REFERENCE.read_text())
    missing = [f["path"] for f in ref["files"] if not (SHARED / "data" / f["path"]).is_file()]
    if missing:
        pytest.skip(f"reference audio missing under {SHARED / 'data'}: {', '.join(missing)}")
    mel = MusicnnMel()
    feats = []
    for f in ref["files"]:
        y = _load_16k(SHARED / "data" / f["path"])
        assert y.shape[0] == f["audio_16k"]["n_samples"]
        np.testing.assert_allclose(y[16000:16008], f["audio_16k"]["samples_16000_to_16007"], atol=1e-5)
        feats.append(mel(y))
    return ref, feats


def test_mel_matches_reference(reference: tuple[dict, list[np.ndarray]]) -> None:
    ref, feats = reference
    m, x = ref["files"][0]["mel"], feats[0]
    assert list(x.shape[::-1][:2]) == m["shape"]  # reference layout is (frames, 96)
    first = x[0, :, :187]
    checks = {
        "first_patch_mean": first.mean(),
        "first_patch_std": first.std(),
        "first_patch_max": first.max(),
        "full_mean": x.mean(),
        "full_std": x.std(),
    }
    for key, ours in checks.items():
        assert abs(ours - m[key]) < 1e-4, key
    # the float16 round-trip may flip a rare bin by one float16 step
    np.testing.assert_allclose(first[:, 0], m["first_patch_frame0"], atol=1e-3)
    np.testing.assert_allclose(first[:, 100], m["first_patch_frame100"], atol=1e-3)


@pytest.mark.shipped
def test_shipped_models_match_reference(
    reference: tuple[dict, list[np.ndarray]], capsys: pytest.CaptureFixture[str]
) -> None:
    missing = [str(p) for p in MODEL_FILES.values() if not p.is_file()]
    if missing:
        pytest.skip(f"converted models missing ({', '.join(missing)}); run tools/convert_musicnn.py")
    ref, feats = reference
    cfg = MusicnnMelConfig()
    batches = [torch.from_numpy(patches(x, patch_frames=cfg.patch_frames, hop=cfg.patch_hop)) for x in feats]
    lines = []
    for key, path in MODEL_FILES.items():
        tensors, card = load_model(path)
        assert card["heads"]["tags"] == ref["meta"]["labels"][key]
        net = Musicnn(MusicnnConfig.from_dict(card["architecture"]["config"])).eval()
        net.load_state_dict(tensors, strict=True)
        worst = {"prob_mean": 0.0, "prob_patch0": 0.0, "penultimate_mean": 0.0}
        for f, x in zip(ref["files"], batches):
            r = f[key]
            assert x.shape[0] == f["n_patches"]
            with torch.no_grad():
                logits, emb = net.forward_features(x)
            prob = torch.sigmoid(logits).numpy()
            worst["prob_mean"] = max(worst["prob_mean"], float(np.abs(prob.mean(0) - r["prob_mean"]).max()))
            worst["prob_patch0"] = max(worst["prob_patch0"], float(np.abs(prob[0] - r["prob_patch0"]).max()))
            worst["penultimate_mean"] = max(
                worst["penultimate_mean"], float(np.abs(emb.numpy().mean(0) - r["penultimate_mean"]).max())
            )
        lines.append(
            f"{key}: max |d| over {len(batches)} clips: "
            + ", ".join(f"{k} {v:.2e}" for k, v in worst.items())
        )
        assert worst["prob_mean"] < 1e-5, lines[-1]  # measured 2.2e-6
        assert worst["prob_patch0"] < 1e-5, lines[-1]  # measured 3.7e-6
        assert worst["penultimate_mean"] < 3e-5, lines[-1]  # measured 1.3e-5
    with capsys.disabled():
        print("\n" + "\n".join(lines))
