"""Read TensorFlow 1.x V2 checkpoints ("tensor bundles") without TensorFlow.

A bundle with prefix ``P`` is two kinds of file:

``P.index``
    A LevelDB-style SSTable mapping each tensor name to a ``BundleEntryProto``
    (dtype, shape, shard, offset, size, masked CRC32C). The empty key holds the
    ``BundleHeaderProto`` (number of shards, endianness).
``P.data-SSSSS-of-NNNNN``
    The raw little-endian tensor bytes of each shard, C order.

Everything is parsed by hand (SSTable footer, block handles, prefix-compressed
entries, restart array, protobuf wire format). The CRC32C trailers are not
checked: the one checkpoint this reads comes from a wheel whose sha256 the
converter pins. Only uncompressed blocks and float tensors are supported;
anything else is refused with a ``ValueError`` rather than misread.

A tool, not part of the package: only ``tools/convert_musicnn.py`` uses it.

References: ``tensorflow/core/util/tensor_bundle/tensor_bundle.proto`` and the
LevelDB table format (``table_format.md``).
"""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "is_optimizer_state",
    "read_tf_bundle",
    "read_tf_bundle_bytes",
    "read_wheel_checkpoint",
]

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_LEN = 48  # two padded BlockHandles (40 bytes) + 8-byte magic
_TRAILER_LEN = 5  # 1 compression-type byte + 4-byte masked CRC32C

# TensorFlow DataType enum -> little-endian numpy dtype (float types only).
_FLOAT_DTYPES: dict[int, str] = {1: "<f4", 2: "<f8", 19: "<f2"}
_DTYPE_NAMES: dict[int, str] = {
    1: "DT_FLOAT", 2: "DT_DOUBLE", 3: "DT_INT32", 4: "DT_UINT8", 5: "DT_INT16", 6: "DT_INT8",
    7: "DT_STRING", 9: "DT_INT64", 10: "DT_BOOL", 14: "DT_BFLOAT16", 19: "DT_HALF",
}  # fmt: skip


# --------------------------------------------------------------------------- protobuf / varints


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode an unsigned LEB128 varint at ``pos``; return ``(value, next_pos)``."""
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 64 bits")


def _proto_fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield ``(field_number, wire_type, value)`` for each field of a protobuf message.

    Varints (wire type 0) and fixed32/fixed64 (5/1) come back as ints,
    length-delimited fields (2) as bytes. Groups (3/4) are refused.
    """
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value = struct.unpack_from("<Q", buf, pos)[0]
            pos += 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value = buf[pos : pos + length]
            if len(value) != length:
                raise ValueError("truncated length-delimited field")
            pos += length
        elif wire == 5:
            value = struct.unpack_from("<I", buf, pos)[0]
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field, wire, value


def _as_int64(v: int) -> int:
    """Reinterpret a varint as a signed int64 (proto ``int64``/``int32`` are two's complement)."""
    return v - (1 << 64) if v >= 1 << 63 else v


@dataclass(frozen=True)
class _Entry:
    """The fields of a ``BundleEntryProto`` this reader uses (missing numeric fields are 0)."""

    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int | None
    sliced: bool


def _parse_shape(buf: bytes) -> tuple[int, ...]:
    """``TensorShapeProto``: repeated ``Dim dim = 2`` (``int64 size = 1``), ``unknown_rank = 3``."""
    dims = []
    for field, wire, value in _proto_fields(buf):
        if field == 2 and wire == 2:
            size = 0
            for f2, w2, v2 in _proto_fields(value):  # type: ignore[arg-type]
                if f2 == 1 and w2 == 0:
                    size = _as_int64(v2)  # type: ignore[arg-type]
            dims.append(size)
        elif field == 3 and wire == 0 and value:
            raise ValueError("tensor shape has unknown rank")
    if any(d < 0 for d in dims):
        raise ValueError(f"tensor shape {dims} has unknown dimensions")
    return tuple(dims)


def _parse_entry(buf: bytes) -> _Entry:
    """``BundleEntryProto``: dtype 1, shape 2, shard_id 3, offset 4, size 5, crc32c 6, slices 7."""
    dtype = shard_id = offset = size = 0
    shape: tuple[int, ...] = ()
    crc: int | None = None
    sliced = False
    for field, wire, value in _proto_fields(buf):
        if field == 1 and wire == 0:
            dtype = value  # type: ignore[assignment]
        elif field == 2 and wire == 2:
            shape = _parse_shape(value)  # type: ignore[arg-type]
        elif field == 3 and wire == 0:
            shard_id = _as_int64(value)  # type: ignore[arg-type]
        elif field == 4 and wire == 0:
            offset = _as_int64(value)  # type: ignore[arg-type]
        elif field == 5 and wire == 0:
            size = _as_int64(value)  # type: ignore[arg-type]
        elif field == 6 and wire == 5:
            crc = value  # type: ignore[assignment]
        elif field == 7:
            sliced = True
    return _Entry(dtype, shape, shard_id, offset, size, crc, sliced)


def _parse_header(buf: bytes) -> tuple[int, int]:
    """``BundleHeaderProto``: ``num_shards`` 1, ``endianness`` 2 (0 little, 1 big)."""
    num_shards = endianness = 0
    for field, wire, value in _proto_fields(buf):
        if field == 1 and wire == 0:
            num_shards = _as_int64(value)  # type: ignore[arg-type]
        elif field == 2 and wire == 0:
            endianness = value  # type: ignore[assignment]
    return num_shards, endianness


# --------------------------------------------------------------------------- SSTable


def _block_handle(buf: bytes, pos: int) -> tuple[int, int, int]:
    """Decode a BlockHandle (varint offset, varint size); return ``(offset, size, next_pos)``."""
    offset, pos = _varint(buf, pos)
    size, pos = _varint(buf, pos)
    return offset, size, pos


def _read_block(table: bytes, offset: int, size: int) -> bytes:
    """Return the contents of one SSTable block."""
    end = offset + size
    if offset < 0 or end + _TRAILER_LEN > len(table):
        raise ValueError(f"block [{offset}, {end}) runs past the end of the index file")
    contents = table[offset:end]
    kind = table[end]
    if kind != 0:
        raise ValueError(
            f"index block at offset {offset} is compressed (type {kind}); "
            "only uncompressed blocks are supported"
        )
    return contents


def _block_entries(block: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Yield ``(key, value)`` pairs of a block, undoing the prefix compression."""
    if len(block) < 4:
        raise ValueError("block too short for its restart count")
    num_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    limit = len(block) - 4 - 4 * num_restarts  # entries end where the restart array begins
    if limit < 0:
        raise ValueError(f"bad restart count {num_restarts} for a {len(block)}-byte block")
    pos, key = 0, b""
    while pos < limit:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        value_len, pos = _varint(block, pos)
        if shared > len(key) or pos + unshared + value_len > limit:
            raise ValueError(f"corrupt block entry at byte {pos}")
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        yield key, block[pos : pos + value_len]
        pos += value_len


def _table_entries(table: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Yield every ``(key, value)`` of an SSTable in key order."""
    if len(table) < _FOOTER_LEN:
        raise ValueError("index file too short for an SSTable footer")
    footer = table[-_FOOTER_LEN:]
    magic = struct.unpack_from("<Q", footer, 40)[0]
    if magic != _TABLE_MAGIC:
        raise ValueError(f"bad SSTable magic {magic:#018x}; not a TF2-style .index file")
    _, _, pos = _block_handle(footer, 0)  # metaindex handle (unused: no filters)
    index_off, index_size, _ = _block_handle(footer, pos)
    index_block = _read_block(table, index_off, index_size)
    for _, handle in _block_entries(index_block):
        off, size, _ = _block_handle(handle, 0)
        yield from _block_entries(_read_block(table, off, size))


# --------------------------------------------------------------------------- bundles


def is_optimizer_state(name: str) -> bool:
    """True for training-only variables: Adam slots and Adam's beta power accumulators.

    Parameters
    ----------
    name
        A checkpoint variable name, e.g. ``"conv2d/kernel/Adam_1"``.
    """
    leaf = name.rsplit("/", 1)[-1]
    return leaf in ("Adam", "Adam_1") or name in ("beta1_power", "beta2_power")


def read_tf_bundle_bytes(
    index: bytes,
    read_shard: Callable[[int, int], bytes],
    *,
    include_optimizer: bool = False,
) -> dict[str, np.ndarray]:
    """Decode a tensor bundle from its index bytes and a shard reader.

    Parameters
    ----------
    index
        Contents of the ``.index`` file.
    read_shard
        ``read_shard(shard_id, num_shards)`` returns the bytes of
        ``.data-{shard_id:05d}-of-{num_shards:05d}``; called at most once per shard.
    include_optimizer
        Also return Adam slots and ``beta*_power`` (see :func:`is_optimizer_state`).

    Returns
    -------
    dict[str, np.ndarray]
        Variable name to a writable native-endian array of the stored shape, in
        key order.

    Raises
    ------
    ValueError
        On a malformed or compressed index, a big-endian or sliced bundle, an
        unsupported (non-float) dtype, a size mismatch.
    """
    entries = iter(_table_entries(index))
    try:
        first_key, header = next(entries)
    except StopIteration:
        raise ValueError("empty tensor bundle index") from None
    if first_key != b"":
        raise ValueError("tensor bundle index does not start with its header entry")
    num_shards, endianness = _parse_header(header)
    if endianness != 0:
        raise ValueError("big-endian tensor bundles are not supported")
    if num_shards < 1:
        raise ValueError(f"bad shard count {num_shards} in bundle header")

    shards: dict[int, bytes] = {}
    out: dict[str, np.ndarray] = {}
    for raw_key, value in entries:
        name = raw_key.decode("utf-8")
        if not include_optimizer and is_optimizer_state(name):
            continue
        entry = _parse_entry(value)
        if entry.sliced:
            raise ValueError(f"{name}: partitioned (sliced) variables are not supported")
        if entry.dtype not in _FLOAT_DTYPES:
            dname = _DTYPE_NAMES.get(entry.dtype, f"enum {entry.dtype}")
            raise ValueError(f"{name}: unsupported dtype {dname}; only float16/32/64 tensors can be read")
        dtype = np.dtype(_FLOAT_DTYPES[entry.dtype])
        n_items = int(np.prod(entry.shape, dtype=np.int64))
        if entry.size != n_items * dtype.itemsize:
            raise ValueError(
                f"{name}: stored size {entry.size} != {n_items} x {dtype.itemsize} bytes "
                f"for shape {entry.shape}"
            )
        if not 0 <= entry.shard_id < num_shards:
            raise ValueError(f"{name}: shard {entry.shard_id} out of range (bundle has {num_shards})")
        if entry.shard_id not in shards:
            shards[entry.shard_id] = read_shard(entry.shard_id, num_shards)
        data = shards[entry.shard_id]
        raw = data[entry.offset : entry.offset + entry.size]
        if len(raw) != entry.size:
            raise ValueError(f"{name}: tensor bytes run past the end of data shard {entry.shard_id}")
        arr = np.frombuffer(raw, dtype=dtype).reshape(entry.shape)  # stored shape, C order
        out[name] = arr.astype(dtype.newbyteorder("="), copy=True)
    return out


def read_tf_bundle(prefix: str | Path, *, include_optimizer: bool = False) -> dict[str, np.ndarray]:
    """Read a TF1 V2 checkpoint from disk.

    Parameters
    ----------
    prefix
        Checkpoint prefix: the files are ``prefix + ".index"`` and
        ``prefix + ".data-00000-of-00001"``. A prefix may end in ``/`` (musicnn's
        does: its files are dot-files in the model directory); a ``Path`` to an
        existing directory is taken to mean ``"<dir>/"``, since ``Path`` drops a
        trailing slash.
    include_optimizer
        See :func:`read_tf_bundle_bytes`.

    Returns
    -------
    dict[str, np.ndarray]
        Variable name to array.
    """
    p = str(prefix)
    if isinstance(prefix, Path) and prefix.is_dir():
        p = p.rstrip("/") + "/"
    index_path = Path(p + ".index")
    if not index_path.is_file():
        raise FileNotFoundError(f"no checkpoint index at {index_path}")

    def read_shard(shard: int, n: int) -> bytes:
        return Path(f"{p}.data-{shard:05d}-of-{n:05d}").read_bytes()

    return read_tf_bundle_bytes(index_path.read_bytes(), read_shard, include_optimizer=include_optimizer)


def read_wheel_checkpoint(
    wheel: str | Path, model_dir: str, *, include_optimizer: bool = False
) -> dict[str, np.ndarray]:
    """Read a checkpoint stored inside a wheel (zip) without extracting it.

    Parameters
    ----------
    wheel
        The ``.whl`` file.
    model_dir
        Directory inside the wheel whose dot-files form the bundle, e.g.
        ``"musicnn/MSD_musicnn"`` (prefix ``musicnn/MSD_musicnn/``).
    include_optimizer
        See :func:`read_tf_bundle_bytes`.

    Returns
    -------
    dict[str, np.ndarray]
        Variable name to array.
    """
    prefix = model_dir.rstrip("/") + "/"
    with zipfile.ZipFile(wheel) as zf:
        try:
            index = zf.read(prefix + ".index")
        except KeyError:
            raise FileNotFoundError(f"{wheel}: no {prefix}.index inside the wheel") from None
        return read_tf_bundle_bytes(
            index,
            lambda shard, n: zf.read(f"{prefix}.data-{shard:05d}-of-{n:05d}"),
            include_optimizer=include_optimizer,
        )
