"""Reader for the IDX files of MNIST and Fashion-MNIST (raw or gzip-compressed).

An IDX file is a 4-byte magic number ``0x00 0x00 <dtype code> <ndim>``, then
``ndim`` big-endian uint32 sizes, then the row-major data. MNIST and
Fashion-MNIST ship ``{train,t10k}-images-idx3-ubyte`` (magic ``0x00000803``:
uint8, 3 dims ``[N, 28, 28]``) and ``{train,t10k}-labels-idx1-ubyte`` (magic
``0x00000801``: uint8, 1 dim ``[N]``), each optionally ``.gz``.

Written by hand (about 60 lines) because TFDS's own MNIST builder parses these
files with TensorFlow, which this project does not require.
"""

import gzip
import os
import zlib

import numpy as np

# IDX dtype codes -> big-endian numpy dtypes.
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_PREFIX = {"train": "train", "test": "t10k"}
_IMAGE_MAGIC, _LABEL_MAGIC = 0x00000803, 0x00000801


def read_idx(path: str, magic: int | None = None) -> np.ndarray:
    """Reads one IDX file (``.gz`` decompressed) into a native-endian array.

    Args:
      path: the file; a name ending in ``.gz`` is read through gzip.
      magic: the magic number the file must have (None: any valid one).

    Returns:
      The array, shape given by the header, dtype by its type code.

    Raises:
      FileNotFoundError: ``path`` does not exist.
      ValueError: a corrupted or truncated gzip stream, a bad magic number, or
        a data length that does not match the header (the message names the
        file and the expected and actual sizes).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"IDX file {path!r} does not exist")
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            with open(path, "rb") as f:
                raw = f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise ValueError(
            f"IDX file {path!r} is not a valid gzip file (corrupted or truncated): {e}"
        ) from e
    if len(raw) < 4:
        raise ValueError(
            f"IDX file {path!r} has {len(raw)} bytes; expected at least a 4-byte magic number"
        )
    found = int.from_bytes(raw[:4], "big")
    if magic is not None and found != magic:
        raise ValueError(
            f"IDX file {path!r} has magic number 0x{found:08x}; expected "
            f"magic number 0x{magic:08x} "
            f"({np.dtype(_DTYPES[magic >> 8 & 0xFF]).name}, {magic & 0xFF} dims)"
        )
    zero, code, ndim = found >> 16, raw[2], raw[3]
    if zero != 0 or code not in _DTYPES or ndim == 0:
        raise ValueError(
            f"IDX file {path!r} has magic number 0x{found:08x}; expected "
            f"magic number 0x0000<type><ndim> with type in "
            f"{sorted(hex(c) for c in _DTYPES)} and ndim >= 1"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(
            f"IDX file {path!r} is truncated: {len(raw)} bytes, header of "
            f"{ndim} dims needs {header}"
        )
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_DTYPES[code])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(
            f"IDX file {path!r} has {len(raw)} bytes; its header "
            f"(shape {shape}, dtype {dtype.name}) needs exactly {expected}"
            f" ({'truncated' if len(raw) < expected else 'trailing bytes'})"
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def find_split_files(directory: str, split: str) -> tuple[str, str]:
    """The (images, labels) IDX paths of ``split`` in ``directory``.

    ``train`` -> ``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``;
    ``test`` -> ``t10k-...``. The uncompressed file wins when both exist.

    Raises:
      FileNotFoundError: the directory or either file is missing.
      ValueError: ``split`` is neither ``'train'`` nor ``'test'``.
    """
    if split not in _PREFIX:
        raise ValueError(f"IDX split {split!r} unknown; expected one of {sorted(_PREFIX)}")
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"IDX directory {directory!r} does not exist")
    paths = []
    for kind in ("images-idx3", "labels-idx1"):
        stem = os.path.join(directory, f"{_PREFIX[split]}-{kind}-ubyte")
        found = [p for p in (stem, stem + ".gz") if os.path.isfile(p)]
        if not found:
            raise FileNotFoundError(
                f"IDX directory {directory!r} has no {split} split file "
                f"{os.path.basename(stem)}[.gz]"
            )
        paths.append(found[0])
    return paths[0], paths[1]


def read_idx_split(directory: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``uint8 [N, H, W, 1]`` and labels ``uint8 [N]`` of one split.

    Raises:
      FileNotFoundError: see :func:`find_split_files`.
      ValueError: a file that is not an image (``0x00000803``) or label
        (``0x00000801``) IDX file, or image and label counts that differ.
    """
    image_path, label_path = find_split_files(directory, split)
    images, labels = read_idx(image_path, _IMAGE_MAGIC), read_idx(label_path, _LABEL_MAGIC)
    if len(images) != len(labels):
        raise ValueError(
            f"IDX split {split!r} in {directory!r}: {len(images)} images in "
            f"{image_path!r} but {len(labels)} labels in {label_path!r}"
        )
    return images[..., None], labels
