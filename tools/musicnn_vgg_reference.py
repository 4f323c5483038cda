"""TF reference outputs of MSD_vgg and MTT_vgg, for ``tests/core/test_musicnn_vgg_port.py``.

The shared ``musicnn_reference.json`` holds outputs of the two musicnn models only.
This tool makes the same for the two VGG models, by running the wheel's own
training graphs (``musicnn/*_vgg/.meta``, restored from their checkpoints) on this
repository's log-mel patches of the shared reference clips, so the comparison is of
the networks alone. Two steps, in two environments::

    # 1. the project's venv: the patches (musicnn-mel, 187 frames, non-overlapping)
    python tools/musicnn_vgg_reference.py mel --out /tmp/vgg-patches.npz
    # 2. a venv with tensorflow-cpu (2.21 was used) and numpy: the TF outputs
    python tools/musicnn_vgg_reference.py tf --wheel musicnn-0.1.0-py3-none-any.whl \\
        --patches /tmp/vgg-patches.npz --out tests/core/data/musicnn_vgg_reference.json

The ``.meta`` graphs hold the gradient ops too; their ``_output_shapes`` attributes
do not import under TF 2, so they are dropped before the import.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MODELS = ("MSD_vgg", "MTT_vgg")
#: graph tensors: the input patches, is_training, the sigmoid outputs, the flattened pool5
TENSORS = (
    "model/Placeholder:0",
    "model/Placeholder_2:0",
    "model/Sigmoid:0",
    "model/Flatten/flatten/Reshape:0",
)


def mel(out: Path, shared: str | None) -> None:
    """Write each reference clip's patches ``(n, 1, 96, 187)`` to ``out`` (keys: the clips' paths)."""
    sys.path.insert(0, str(REPO))
    from mcbr_core.features.musicnn_mel import MusicnnMel
    from mcbr_core.features.patches import patches
    from tools.convert_musicnn import find_shared, load_16k

    root = find_shared(shared)
    if root is None:
        raise SystemExit("shared musicnn reference not found")
    ref = json.loads((root / "reference" / "musicnn_reference.json").read_text())
    m = MusicnnMel()
    arrays = {
        f["path"]: patches(m(load_16k(root / "data" / f["path"])), patch_frames=187, hop=187)
        for f in ref["files"]
    }
    np.savez_compressed(out, **arrays)
    print(f"{out}: {len(arrays)} clips")


def run_tf(wheel: Path, patch_file: Path, out: Path) -> None:
    """Run each VGG training graph on the patches and write the reference JSON."""
    import tensorflow as tf
    from tensorflow.core.protobuf import meta_graph_pb2

    tf.compat.v1.disable_eager_execution()
    clips = dict(np.load(patch_file))
    result: dict = {"what": __doc__.split("\n\n")[0], "tensorflow": tf.__version__, "files": []}
    outputs: dict[str, dict[str, dict]] = {path: {} for path in clips}
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(wheel) as zf:
        for model in MODELS:
            names = [n for n in zf.namelist() if n.startswith(f"musicnn/{model}/")]
            zf.extractall(tmp, names)
            meta = meta_graph_pb2.MetaGraphDef()
            meta.ParseFromString(Path(tmp, f"musicnn/{model}/.meta").read_bytes())
            for node in meta.graph_def.node:
                node.attr.pop("_output_shapes", None)
            graph = tf.Graph()
            with graph.as_default(), tf.compat.v1.Session(graph=graph) as sess:
                saver = tf.compat.v1.train.import_meta_graph(meta, clear_devices=True)
                saver.restore(sess, f"{tmp}/musicnn/{model}/")
                x, training, sigmoid, pool5 = (graph.get_tensor_by_name(t) for t in TENSORS)
                for path, p in clips.items():
                    feed = {x: p[:, 0].transpose(0, 2, 1), training: False}  # (n, 187, 96)
                    prob, emb = sess.run([sigmoid, pool5], feed_dict=feed)
                    outputs[path][model] = {
                        "prob_mean": _round(prob.mean(0)),
                        "prob_patch0": _round(prob[0]),
                        "embedding_mean": _round(emb.mean(0)),
                        "top5": [int(i) for i in np.argsort(-prob.mean(0))[:5]],
                    }
    for path, models in outputs.items():
        result["files"].append({"path": path, "n_patches": int(clips[path].shape[0]), **models})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{out}: {len(clips)} clips x {len(MODELS)} models")


def _round(v: np.ndarray) -> list[float]:
    return [float(f"{x:.7g}") for x in np.asarray(v, dtype=np.float64)]


def main() -> None:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("mel")
    m.add_argument("--out", type=Path, required=True)
    m.add_argument("--shared")
    t = sub.add_parser("tf")
    t.add_argument("--wheel", type=Path, required=True)
    t.add_argument("--patches", type=Path, required=True)
    t.add_argument(
        "--out", type=Path, default=REPO / "tests" / "core" / "data" / "musicnn_vgg_reference.json"
    )
    args = ap.parse_args()
    if args.cmd == "mel":
        mel(args.out, args.shared)
    else:
        run_tf(args.wheel, args.patches, args.out)


if __name__ == "__main__":
    main()
