"""Decoders: every format, windows, downmix, resampling, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mcbr_core.audio.decode import PyAVDecoder, SoundfileDecoder, load_audio, probe, resample
from mcbr_core.errors import DecodeError
from tests.audiogen import FORMATS

DECODERS = [SoundfileDecoder(), PyAVDecoder()]


def dominant_freq(y: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.argmax(spec) * sr / len(y))


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_decodes_to_the_signal(make_audio, fmt: str) -> None:
    path = make_audio(f"tone.{fmt}", seconds=3.0, freq=440.0, channels=2)
    y = load_audio(path, sr=16000, decoders=DECODERS)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) / 16000 - 3.0) < 0.1  # encoder padding stays small
    assert abs(dominant_freq(y, 16000) - 440.0) < 5.0
    info, _ = probe(path, DECODERS)
    assert abs(info.duration - 3.0) < 0.1


@pytest.mark.parametrize("fmt", ["flac", "m4a"])
def test_window_decodes_only_that_span(make_audio, fmt: str) -> None:
    path = make_audio(f"long.{fmt}", seconds=8.0)
    y = load_audio(path, sr=16000, decoders=DECODERS, start=3.0, duration=2.0)
    assert abs(len(y) - 32000) <= 160


def test_m4a_goes_to_pyav_and_flac_to_soundfile(make_audio) -> None:
    _, dec = probe(make_audio("a.m4a"), DECODERS)
    assert dec.name == "pyav"
    _, dec = probe(make_audio("a.flac"), DECODERS)
    assert dec.name == "soundfile"


def test_resample_length_follows_librosa_rule() -> None:
    y = np.zeros(22050 * 2 + 7, dtype=np.float32)
    assert len(resample(y, 22050, 16000)) == int(np.ceil(len(y) * 16000 / 22050))


def test_non_finite_samples_become_zero(tmp_path: Path) -> None:
    import soundfile as sf

    y = np.zeros((16000, 1), dtype=np.float32)
    y[100] = np.nan
    y[200] = np.inf
    sf.write(tmp_path / "bad.wav", y, 16000, subtype="FLOAT")
    out = load_audio(tmp_path / "bad.wav", sr=16000, decoders=DECODERS)
    assert np.isfinite(out).all()


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.mp3", b"", "empty"),
        ("noise.mp3", bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)), "cannot"),
        ("text.flac", b"this is not audio\n" * 50, "cannot"),
    ],
)
def test_bad_files_raise_a_clear_decode_error(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DecodeError, match=reason):
        load_audio(path, sr=16000, decoders=DECODERS)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DecodeError, match="not found"):
        load_audio(tmp_path / "gone.flac", sr=16000, decoders=DECODERS)


def test_a_damaged_file_comes_back_short_not_whole_nor_failed(tmp_path: Path) -> None:
    from tests.badinput import damaged_tail_mp3, overwritten_flac

    for path in (damaged_tail_mp3(tmp_path), overwritten_flac(tmp_path)):
        for decoder in DECODERS:
            assert decoder.info(path).duration == pytest.approx(30.0, abs=0.1)  # the header is intact
            samples, sr = decoder.decode(path)  # used to raise (libsndfile) or stop without a word (ffmpeg)
            assert 0 < len(samples) / sr < 0.2 * 30.0, (path.name, decoder.name)


def test_the_longest_decode_wins_when_the_first_falls_short(tmp_path: Path) -> None:
    from tests.badinput import glitched_mp3

    path = glitched_mp3(tmp_path)
    first, sr = SoundfileDecoder().decode(path)
    assert len(first) / sr < 20.0  # libsndfile stops at the glitch
    y = load_audio(path, sr=16000, decoders=DECODERS, expected=30.0)
    assert len(y) / 16000 > 29.5  # ffmpeg skips the damaged packets and goes on
    assert len(load_audio(path, sr=16000, decoders=DECODERS)) == pytest.approx(len(first) * 16000 / sr, abs=1)


def test_vbr_mp3_without_a_xing_header_is_measured_and_decoded_whole(tmp_path: Path) -> None:
    import soundfile as sf

    from tests.badinput import vbr_mp3_without_xing

    path = vbr_mp3_without_xing(tmp_path)
    assert sf.info(str(path)).duration > 60  # libsndfile's bitrate estimate, for a 30-s file
    info, decoder = probe(path, DECODERS)
    assert decoder.name == "pyav" and info.duration == pytest.approx(30.0, abs=0.1)  # frames counted
    y = load_audio(path, sr=16000, decoders=DECODERS)
    assert len(y) / 16000 == pytest.approx(info.duration, abs=0.05)


@pytest.mark.parametrize("fmt", ["mp3", "ogg", "opus", "flac", "m4a"])
def test_a_window_is_the_same_slice_of_the_track_from_either_decoder(tmp_path: Path, fmt: str) -> None:
    from tests.audiogen import medley, write_audio

    sr = 48000 if fmt == "opus" else 22050
    path = write_audio(tmp_path / f"medley.{fmt}", medley(10.0, sr=sr), sr)
    whole, _ = PyAVDecoder().decode(path)
    for start in (0.5, 4.0, 7.3):
        window, _ = PyAVDecoder().decode(path, start=start, duration=1.0)
        first = round(start * sr)
        # ffmpeg's MP3 timeline starts after the encoder delay (pts 1105 samples in), and a codec's
        # first frames after a seek lack their history: both used to shift or garble the window
        assert np.abs(window - whole[first : first + len(window)]).max() < 1e-4, start
        if fmt != "m4a":  # libsndfile seeks sample-accurately
            reference, _ = SoundfileDecoder().decode(path, start=start, duration=1.0)
            assert np.abs(window - reference).max() < 0.01, start
