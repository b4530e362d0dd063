"""The FCN-8s Cityscapes segmenter of the FCN-score (docs/protocols.md), loaded without Caffe.

The authors' `fcn-8s-cityscapes.caffemodel` (~512 MB) is a protobuf NetParameter; a
small wire-format decoder reads its blobs into numpy. The `segmenter` stage converts it
once into a plain PyTorch state_dict (`load_segmenter` accepts either).
Layer names and hyper-parameters follow the official deploy.prototxt
(scripts/eval_cityscapes/caffemodel/ in the pix2pix code).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from replication.config.scoring import VGG_WIDTHS
from replication.core.errors import ScoringError
from replication.core.fileio import atomic_path

BLOCK_DEPTHS = (2, 2, 3, 3, 3)  # convolutions per VGG block
FC_WIDTH = 4096  # fc6_cs, fc7_cs
NUM_OUTPUTS = 20  # 19 train ids + one extra output (index 19) that is no class
MEAN_BGR = (72.78044, 83.21195, 73.45286)  # official cityscapes.py, BGR order
FORMAT_TAG = "replication.fcn8s.v1"

# Module attribute -> layer name in the .caffemodel. The official deploy.prototxt uses
# the plain names below (no "_cs" on score_pool4 / score_pool3); if a copy of the
# weights names a layer differently, fix it here.
CAFFE_LAYER_NAMES: dict[str, str] = {
    **{f"conv{b}_{i}": f"conv{b}_{i}"
       for b, depth in enumerate(BLOCK_DEPTHS, 1) for i in range(1, depth + 1)},
    "fc6_cs": "fc6_cs",
    "fc7_cs": "fc7_cs",
    "score_fr": "score_fr",
    "upscore2": "upscore2",
    "score_pool4": "score_pool4",
    "upscore_pool4": "upscore_pool4",
    "score_pool3": "score_pool3",
    "upscore8": "upscore8",
}


class CaffeModelError(ScoringError):
    """FCN-8s weights (.caffemodel or converted .pt) that cannot be read or do not fit FCN8s."""


def _crop(x: torch.Tensor, offset: int, size) -> torch.Tensor:
    """Caffe's Crop layer (axis 2): a window of `size` starting `offset` pixels in."""
    h, w = size
    return x[..., offset:offset + h, offset:offset + w]


class FCN8s(nn.Module):
    """FCN-8s as in the official deploy.prototxt; output N x 20 x H x W scores.

    Input: N x 3 x H x W float RGB in 0..255, any H, W. The preprocessing of the
    official cityscapes.py happens HERE, in forward (the only place): channels are
    flipped to BGR and MEAN_BGR is subtracted. No dropout at test (deploy.prototxt).
    `widths` / `fc_width` exist so tests can build a narrow net; the defaults are the
    real ones.
    """

    def __init__(self, widths=VGG_WIDTHS, fc_width: int = FC_WIDTH,
                 num_outputs: int = NUM_OUTPUTS):
        super().__init__()
        self.widths, self.fc_width, self.num_outputs = tuple(widths), fc_width, num_outputs
        in_channels = 3
        for b, (width, depth) in enumerate(zip(self.widths, BLOCK_DEPTHS), 1):
            for i in range(1, depth + 1):
                # pad 100 on conv1_1 lets any input size survive fc6's 7x7 (FCN paper)
                padding = 100 if (b, i) == (1, 1) else 1
                setattr(self, f"conv{b}_{i}", nn.Conv2d(in_channels, width, 3, padding=padding))
                in_channels = width
        k = num_outputs
        self.fc6_cs = nn.Conv2d(self.widths[4], fc_width, 7)
        self.fc7_cs = nn.Conv2d(fc_width, fc_width, 1)
        self.score_fr = nn.Conv2d(fc_width, k, 1)
        self.upscore2 = nn.ConvTranspose2d(k, k, 4, stride=2, bias=False)
        self.score_pool4 = nn.Conv2d(self.widths[3], k, 1)
        self.upscore_pool4 = nn.ConvTranspose2d(k, k, 4, stride=2, bias=False)
        self.score_pool3 = nn.Conv2d(self.widths[2], k, 1)
        self.upscore8 = nn.ConvTranspose2d(k, k, 16, stride=8, bias=False)
        self.register_buffer("mean_bgr", torch.tensor(MEAN_BGR).view(1, 3, 1, 1),
                             persistent=False)

    def _vgg_block(self, x: torch.Tensor, b: int) -> torch.Tensor:
        for i in range(1, BLOCK_DEPTHS[b - 1] + 1):
            x = F.relu(getattr(self, f"conv{b}_{i}")(x))
        # Caffe pooling rounds the output size up
        return F.max_pool2d(x, 2, stride=2, ceil_mode=True)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        x = rgb.flip(1) - self.mean_bgr
        pool3 = self._vgg_block(self._vgg_block(self._vgg_block(x, 1), 2), 3)
        pool4 = self._vgg_block(pool3, 4)
        pool5 = self._vgg_block(pool4, 5)
        x = F.relu(self.fc7_cs(F.relu(self.fc6_cs(pool5))))
        x = self.upscore2(self.score_fr(x))
        x = self.upscore_pool4(x + _crop(self.score_pool4(pool4), 5, x.shape[-2:]))
        x = self.upscore8(x + _crop(self.score_pool3(pool3), 9, x.shape[-2:]))
        return _crop(x, 31, rgb.shape[-2:])


# --- .caffemodel reader: protobuf wire format, just the fields caffe.proto needs -------

class _Malformed(Exception):
    pass


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while pos < end:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift >= 70:
            raise _Malformed("varint longer than 10 bytes")
    raise _Malformed("varint runs past the end of its message (file truncated?)")


def _next_field(buf: bytes, pos: int, end: int) -> tuple[int, int, object, int]:
    """One field at `pos`: (number, wire type, value, next position).

    value: the integer of a varint, the start of a fixed 64/32-bit value, or the
    (start, stop) span of a length-delimited one.
    """
    key, pos = _varint(buf, pos, end)
    number, wire = key >> 3, key & 7
    if number == 0:
        raise _Malformed("field number 0")
    if wire == 0:
        value, nxt = _varint(buf, pos, end)
    elif wire == 2:
        size, pos = _varint(buf, pos, end)
        value, nxt = (pos, pos + size), pos + size
    elif wire in (1, 5):
        value, nxt = pos, pos + (8 if wire == 1 else 4)
    else:
        raise _Malformed(f"wire type {wire} (field {number}) is not used by caffe.proto")
    if nxt > end:
        raise _Malformed(f"field {number} runs past the end of its message (file truncated?)")
    return number, wire, value, nxt


def _fields(buf: bytes, start: int, end: int):
    pos = start
    while pos < end:
        number, wire, value, pos = _next_field(buf, pos, end)
        yield number, wire, value


def _packed(buf: bytes, span: tuple[int, int], dtype: str) -> np.ndarray:
    start, stop = span
    size = np.dtype(dtype).itemsize
    if (stop - start) % size:
        raise _Malformed(f"packed {dtype} data of {stop - start} bytes")
    return np.frombuffer(buf, dtype, count=(stop - start) // size, offset=start)


def _unpacked_run(buf: bytes, pos: int, end: int, dtype: str) -> tuple[np.ndarray, int]:
    """Consecutive unpacked fields sharing the one-byte tag at `pos`, without a Python
    loop per value: each is that tag byte followed by one little-endian value."""
    stride = 1 + np.dtype(dtype).itemsize
    rows = np.frombuffer(buf, np.uint8, count=(end - pos) // stride * stride, offset=pos)
    rows = rows.reshape(-1, stride)
    same_tag = rows[:, 0] == buf[pos]
    n = len(rows) if same_tag.all() else int(same_tag.argmin())
    return rows[:n, 1:].copy().view(dtype).ravel(), pos + n * stride


def _blob_shape(buf: bytes, start: int, end: int) -> tuple[int, ...]:
    """BlobShape: repeated int64 dim = 1, packed or not."""
    dims = []
    for number, wire, value in _fields(buf, start, end):
        if number == 1 and wire == 0:
            dims.append(value)
        elif number == 1 and wire == 2:
            pos, stop = value
            while pos < stop:
                dim, pos = _varint(buf, pos, stop)
                dims.append(dim)
    return tuple(dims)


def _blob(buf: bytes, start: int, end: int) -> np.ndarray:
    """BlobProto -> float32 array. Values: data = 5 (float), double_data = 8; shape:
    shape = 7, else the legacy num, channels, height, width = 1..4."""
    legacy, shape, chunks = {}, None, []
    pos = start
    while pos < end:
        number, wire, value, nxt = _next_field(buf, pos, end)
        if (number, wire) in ((5, 5), (8, 1)):  # unpacked float / double values
            run, nxt = _unpacked_run(buf, pos, end, "<f4" if number == 5 else "<f8")
            chunks.append(run)
        elif number in (5, 8) and wire == 2:
            chunks.append(_packed(buf, value, "<f4" if number == 5 else "<f8"))
        elif number == 7 and wire == 2:
            shape = _blob_shape(buf, *value)
        elif number in (1, 2, 3, 4) and wire == 0:
            legacy[number] = value
        pos = nxt
    data = np.concatenate(chunks or [np.zeros(0)]).astype(np.float32, copy=False)
    if shape is None:
        # caffe.proto defaults the legacy dims to 0, as Caffe's Blob::FromProto reads them
        shape = tuple(legacy.get(f, 0) for f in (1, 2, 3, 4)) if legacy else (data.size,)
    if math.prod(shape) != data.size:
        raise _Malformed(f"blob shape {shape} does not hold its {data.size} values")
    return data.reshape(shape)


# NetParameter field -> (name field, blobs field) of the layer message it holds
_LAYER_FIELDS = {100: (1, 7),  # LayerParameter
                 2: (4, 6)}  # legacy V1LayerParameter


def _layer(buf: bytes, span: tuple[int, int], name_field: int, blobs_field: int):
    name, blob_spans = None, []
    for number, wire, value in _fields(buf, *span):
        if number == name_field and wire == 2:
            try:
                name = buf[value[0]:value[1]].decode("utf-8")
            except UnicodeDecodeError:
                raise _Malformed("a layer name is not UTF-8") from None
        elif number == blobs_field and wire == 2:
            blob_spans.append(value)
    if name is None:
        raise _Malformed("a layer has no name")
    try:
        return name, [_blob(buf, *s) for s in blob_spans]
    except _Malformed as e:
        raise _Malformed(f"layer {name!r}: {e}") from None


def read_caffemodel(path: str | Path) -> dict[str, list[np.ndarray]]:
    """{layer name: [its blobs as float32 arrays]} of a binary .caffemodel."""
    path = Path(path)
    if not path.is_file():
        raise CaffeModelError(f"{path}: no such .caffemodel (fcn-8s-cityscapes.caffemodel, docs/protocols.md)")
    buf = path.read_bytes()  # once; packed data becomes arrays via np.frombuffer
    layers: dict[str, list[np.ndarray]] = {}
    try:
        for number, wire, value in _fields(buf, 0, len(buf)):
            if number in _LAYER_FIELDS and wire == 2:
                name, blobs = _layer(buf, value, *_LAYER_FIELDS[number])
                if name in layers:
                    raise _Malformed(f"layer {name!r} appears twice")
                layers[name] = blobs
    except _Malformed as e:
        raise CaffeModelError(f"{path}: not a readable .caffemodel (binary protobuf "
                              f"NetParameter): {e}") from None
    if not any(layers.values()):
        raise CaffeModelError(f"{path}: no layer with weights; is it a binary .caffemodel "
                              "(not a .prototxt)?")
    return layers


# --- loading weights -----------------------------------------------------------------

def _same_shape(got: tuple, expected: tuple) -> bool:
    # legacy 4-d blobs store a bias of N as (1, 1, 1, N): leading ones do not count
    def strip(shape):
        shape = list(shape)
        while len(shape) > 1 and shape[0] == 1:
            shape.pop(0)
        return shape
    return tuple(got) == tuple(expected) or strip(got) == strip(expected)


def load_caffe_layers(model: FCN8s, layers: dict[str, list[np.ndarray]], source) -> FCN8s:
    """Copy blobs into `model` by CAFFE_LAYER_NAMES, checking names and shapes."""
    expected = set(CAFFE_LAYER_NAMES.values())
    missing = sorted(expected - set(layers))
    unknown = sorted(n for n, blobs in layers.items() if blobs and n not in expected)
    if missing or unknown:
        raise CaffeModelError(f"{source}: layers missing from the file: {missing}; layers with "
                              f"weights the model does not know: {unknown}; fix "
                              "CAFFE_LAYER_NAMES in replication/metrics/fcn.py")
    for attr, name in CAFFE_LAYER_NAMES.items():
        module = getattr(model, attr)
        targets = [module.weight] + ([module.bias] if module.bias is not None else [])
        blobs = layers[name]
        if len(blobs) != len(targets):
            raise CaffeModelError(f"{source}: layer {name}: expected {len(targets)} blobs "
                                  f"(weight{', bias' if len(targets) == 2 else ''}), got {len(blobs)}")
        for what, target, blob in zip(("weight", "bias"), targets, blobs):
            if not _same_shape(blob.shape, target.shape):
                raise CaffeModelError(f"{source}: layer {name} {what}: expected shape "
                                      f"{tuple(target.shape)}, got {blob.shape}")
            with torch.no_grad():
                target.copy_(torch.from_numpy(blob.reshape(target.shape)))
    return model


def fcn8s_from_caffemodel(path: str | Path, model: FCN8s | None = None) -> FCN8s:
    """FCN8s (the real widths unless `model` is given) with the weights of a .caffemodel."""
    model = FCN8s() if model is None else model
    return load_caffe_layers(model, read_caffemodel(path), path).eval()


def save_converted(model: FCN8s, path: str | Path) -> None:
    """Plain state_dict + architecture + format tag, written atomically."""
    record = {
        "format": FORMAT_TAG,
        "widths": list(model.widths),
        "fc_width": model.fc_width,
        "num_outputs": model.num_outputs,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        torch.save(record, out)  # a file object: reproducible bytes (checkpoints.save)


def load_converted(path: str | Path) -> FCN8s:
    path = Path(path)
    if not path.is_file():
        raise CaffeModelError(f"{path}: no converted FCN-8s file; `replication segmenter` "
                              "writes it from the caffemodel")
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # any unpickling failure means "not our file"
        raise CaffeModelError(f"{path}: not a converted FCN-8s file ({type(e).__name__}); "
                              "delete it and run `replication segmenter`") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT_TAG:
        raise CaffeModelError(f"{path}: format tag is not {FORMAT_TAG!r}; delete it and run "
                              "`replication segmenter`")
    model = FCN8s(record["widths"], record["fc_width"], record["num_outputs"])
    model.load_state_dict(record["state_dict"])
    return model.eval()


def load_segmenter(path: str | Path) -> FCN8s:
    """The FCN-8s from a .caffemodel or from a converted .pt / .pth file."""
    suffix = Path(path).suffix.lower()
    if suffix == ".caffemodel":
        return fcn8s_from_caffemodel(path)
    if suffix in (".pt", ".pth"):
        return load_converted(path)
    raise CaffeModelError(f"{path}: FCN weights must end in .caffemodel, .pt or .pth")


@torch.no_grad()
def segment(model: nn.Module, images, device, batch_size: int = 1) -> np.ndarray:
    """Argmax train-id maps (N, H, W) uint8 of (N, H, W, 3) uint8 RGB images.

    Values 0..19: 19 is the FCN's extra output, no class (see segmentation.py).
    batch_size 1 (as the official script) keeps 1024x2048 frames within a few GB.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images: {images.dtype} array of shape {images.shape}; expected "
                         "uint8 RGB of shape (N, H, W, 3)")
    model = model.to(device).eval()
    maps = []
    for start in range(0, len(images), batch_size):
        batch = torch.from_numpy(images[start:start + batch_size]).to(device)
        scores = model(batch.permute(0, 3, 1, 2).float())
        maps.append(scores.argmax(1).to(torch.uint8).cpu().numpy())
    return np.concatenate(maps)
