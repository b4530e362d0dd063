import struct

import numpy as np
import pytest
import torch

from replication.metrics.fcn import (
    CaffeModelError,
    FCN8s,
    fcn8s_from_caffemodel,
    load_converted,
    load_segmenter,
    read_caffemodel,
    save_converted,
    segment,
)

# --- a tiny protobuf writer, independent of the reader under test ----------------------


def varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def key(field: int, wire: int) -> bytes:
    return varint(field << 3 | wire)


def int_field(field: int, n: int) -> bytes:
    return key(field, 0) + varint(n)


def bytes_field(field: int, payload: bytes) -> bytes:
    return key(field, 2) + varint(len(payload)) + payload


def blob_proto(array: np.ndarray, shape: str, floats: str) -> bytes:
    """BlobProto; shape: "packed" | "unpacked" (BlobShape, field 7) | "legacy" (fields 1-4);
    floats: "packed" | "unpacked" (field 5)."""
    values = array.astype("<f4").ravel()
    if floats == "packed":
        data = bytes_field(5, values.tobytes())
    else:
        data = b"".join(key(5, 5) + struct.pack("<f", v) for v in values)
    if shape == "legacy":  # dims after the data, as field order must not matter
        dims = (1,) * (4 - array.ndim) + array.shape
        return data + b"".join(int_field(f, d) for f, d in zip((1, 2, 3, 4), dims))
    if shape == "packed":
        blob_shape = bytes_field(1, b"".join(varint(d) for d in array.shape))
    else:
        blob_shape = b"".join(int_field(1, d) for d in array.shape)
    diff = bytes_field(6, np.zeros(3, "<f4").tobytes())  # `diff`, to be skipped
    return bytes_field(7, blob_shape) + diff + data


def layer_proto(name: str, blobs: list[bytes], legacy: bool) -> bytes:
    if legacy:  # V1LayerParameter: bottom 2, name 4, type 5 (enum), blobs 6
        body = bytes_field(2, b"data") + bytes_field(4, name.encode()) + int_field(5, 4)
        return bytes_field(2, body + b"".join(bytes_field(6, b) for b in blobs))
    # LayerParameter: name 1, type 2, bottom 3, param 6 (ParamSpec lr_mult 3), blobs 7,
    # phase 10, convolution_param 106, and a made-up fixed64 field 99
    param = bytes_field(6, key(3, 5) + struct.pack("<f", 1.0))
    body = (bytes_field(1, name.encode()) + bytes_field(2, b"Convolution") + bytes_field(3, b"x")
            + param + int_field(10, 1) + bytes_field(106, int_field(1, 20))
            + key(99, 1) + struct.pack("<d", 2.5))
    return bytes_field(100, body + b"".join(bytes_field(7, b) for b in blobs))


def write_caffemodel(path, weights: dict, legacy: bool = False, unpacked_every: int = 4):
    out = bytes_field(1, b"FCN") + layer_proto("data", [], legacy)
    for i, (name, arrays) in enumerate(weights.items()):
        shape = "legacy" if legacy else ("packed", "unpacked")[i % 2]
        floats = "unpacked" if i % unpacked_every == 0 else "packed"
        out += layer_proto(name, [blob_proto(a, shape, floats) for a in arrays], legacy)
        out += layer_proto(f"relu_{name}", [], legacy)
    path.write_bytes(out)
    return path


# --- a narrow FCN-8s and its weight shapes, written out from deploy.prototxt -----------

WIDTHS, FC, K = (2, 3, 4, 5, 6), 7, 20
SHAPES = {  # layer: (weight shape, bias shape or None)
    "conv1_1": ((2, 3, 3, 3), (2,)), "conv1_2": ((2, 2, 3, 3), (2,)),
    "conv2_1": ((3, 2, 3, 3), (3,)), "conv2_2": ((3, 3, 3, 3), (3,)),
    "conv3_1": ((4, 3, 3, 3), (4,)), "conv3_2": ((4, 4, 3, 3), (4,)),
    "conv3_3": ((4, 4, 3, 3), (4,)),
    "conv4_1": ((5, 4, 3, 3), (5,)), "conv4_2": ((5, 5, 3, 3), (5,)),
    "conv4_3": ((5, 5, 3, 3), (5,)),
    "conv5_1": ((6, 5, 3, 3), (6,)), "conv5_2": ((6, 6, 3, 3), (6,)),
    "conv5_3": ((6, 6, 3, 3), (6,)),
    "fc6_cs": ((7, 6, 7, 7), (7,)), "fc7_cs": ((7, 7, 1, 1), (7,)),
    "score_fr": ((20, 7, 1, 1), (20,)),
    "upscore2": ((20, 20, 4, 4), None),  # Caffe deconv: (in, out, kh, kw), no bias
    "score_pool4": ((20, 5, 1, 1), (20,)),
    "upscore_pool4": ((20, 20, 4, 4), None),
    "score_pool3": ((20, 4, 1, 1), (20,)),
    "upscore8": ((20, 20, 16, 16), None),
}


def random_weights(seed=0) -> dict:
    rng = np.random.default_rng(seed)
    return {name: [rng.standard_normal(s).astype(np.float32) for s in shapes if s is not None]
            for name, shapes in SHAPES.items()}


@pytest.mark.parametrize("legacy", [False, True], ids=["layer_field_100", "legacy_field_2"])
def test_read_caffemodel_returns_the_written_blobs(tmp_path, legacy):
    weights = random_weights()
    layers = read_caffemodel(write_caffemodel(tmp_path / "w.caffemodel", weights, legacy))
    assert layers["data"] == [] and layers["relu_conv1_1"] == []
    for name, arrays in weights.items():
        assert len(layers[name]) == len(arrays)
        for got, want in zip(layers[name], arrays):
            assert got.dtype == np.float32
            want_shape = (1,) * (4 - want.ndim) + want.shape if legacy else want.shape
            assert got.shape == want_shape
            np.testing.assert_array_equal(got.reshape(want.shape), want)


@pytest.mark.parametrize("legacy", [False, True], ids=["layer_field_100", "legacy_field_2"])
def test_weights_load_into_the_right_tensors(tmp_path, legacy):
    weights = random_weights(seed=1)
    path = write_caffemodel(tmp_path / "w.caffemodel", weights, legacy)
    model = fcn8s_from_caffemodel(path, model=FCN8s(WIDTHS, FC))
    for name, (w_shape, b_shape) in SHAPES.items():
        layer = getattr(model, name)
        assert tuple(layer.weight.shape) == w_shape
        np.testing.assert_array_equal(layer.weight.detach().numpy(), weights[name][0])
        if b_shape is None:
            assert layer.bias is None
        else:
            np.testing.assert_array_equal(layer.bias.detach().numpy(), weights[name][1])


def test_wrong_shape_names_layer_and_shapes(tmp_path):
    weights = random_weights()
    weights["score_pool4"][0] = np.zeros((20, 4, 1, 1), np.float32)
    path = write_caffemodel(tmp_path / "w.caffemodel", weights)
    with pytest.raises(CaffeModelError, match=r"score_pool4 weight.*\(20, 5, 1, 1\).*\(20, 4, 1, 1\)"):
        fcn8s_from_caffemodel(path, model=FCN8s(WIDTHS, FC))
    # the default model has the real VGG16 widths: a narrow file does not fit it
    with pytest.raises(CaffeModelError, match=r"conv1_1 weight.*\(64, 3, 3, 3\).*\(2, 3, 3, 3\)"):
        fcn8s_from_caffemodel(path)


def test_renamed_or_extra_layers_are_reported(tmp_path):
    weights = random_weights()
    weights["score_pool4_cs"] = weights.pop("score_pool4")
    path = write_caffemodel(tmp_path / "w.caffemodel", weights)
    with pytest.raises(CaffeModelError, match=r"missing.*'score_pool4'.*'score_pool4_cs'"):
        fcn8s_from_caffemodel(path, model=FCN8s(WIDTHS, FC))
    weights = random_weights()
    weights["upscore2"].append(np.zeros(20, np.float32))  # a bias the deconv does not have
    path = write_caffemodel(tmp_path / "w.caffemodel", weights)
    with pytest.raises(CaffeModelError, match="upscore2: expected 1 blobs"):
        fcn8s_from_caffemodel(path, model=FCN8s(WIDTHS, FC))


def test_truncated_or_foreign_files_fail_in_one_line(tmp_path):
    good = write_caffemodel(tmp_path / "good.caffemodel", random_weights()).read_bytes()
    cases = {
        "cut.caffemodel": good[: len(good) // 2],
        "net.prototxt": b'layer {\n  name: "conv1_1"\n  type: "Convolution"\n}\n',
        "empty.caffemodel": b"",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CaffeModelError) as error:
            read_caffemodel(tmp_path / name)
        assert name in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(CaffeModelError, match="nothere.caffemodel"):
        read_caffemodel(tmp_path / "nothere.caffemodel")


# --- the network ----------------------------------------------------------------------

def test_full_size_parameter_count():
    # VGG16's 13 convolutions hold 14,714,688 parameters (the published VGG16 count less
    # its fc layers); the head, from deploy.prototxt with 20 outputs:
    head = (512 * 49 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 20 + 20) \
        + 20 * 20 * 16 + (512 * 20 + 20) + 20 * 20 * 16 + (256 * 20 + 20) + 20 * 20 * 256
    with torch.device("meta"):
        model = FCN8s()
    assert sum(p.numel() for p in model.parameters()) == 14_714_688 + head == 134_473_084
    # 134.5 M float32 values = 538 MB, the "~512 MB" (MiB) of the authors' file


@pytest.mark.parametrize("size", [(32, 32), (50, 70), (64, 128), (1, 1)])
def test_output_has_input_size(size):
    model = FCN8s(WIDTHS, FC)
    with torch.no_grad():
        out = model(torch.rand(2, 3, *size) * 255)
    assert out.shape == (2, 20, *size)


def test_preprocessing_is_bgr_minus_mean():
    model = FCN8s(WIDTHS, FC)
    seen = []
    model.conv1_1.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    rgb = torch.tensor([10.0, 20.0, 30.0]).view(1, 3, 1, 1).expand(1, 3, 4, 4)
    with torch.no_grad():
        model(rgb)
    expected = torch.tensor([30 - 72.78044, 20 - 83.21195, 10 - 73.45286])
    torch.testing.assert_close(seen[0][0, :, 2, 2], expected)


def _point_net(path: str) -> FCN8s:
    """One-channel net that carries a point through one score path, box upsampling."""
    model = FCN8s((1,) * 5, fc_width=1, num_outputs=1)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        for b, depth in enumerate((2, 2, 3, 3, 3), 1):
            for i in range(1, depth + 1):
                getattr(model, f"conv{b}_{i}").weight[0, 0, 1, 1] = 1  # identity 3x3
        model.fc6_cs.weight[0, 0, 3, 3] = 1  # centre tap of the 7x7
        model.fc7_cs.weight.fill_(1)
        model.upscore2.weight.fill_(1)
        model.upscore_pool4.weight.fill_(1)
        model.upscore8.weight.fill_(1)
        {"pool3": model.score_pool3, "pool4": model.score_pool4,
         "fc7": model.score_fr}[path].weight.fill_(1)
    return model


@pytest.mark.parametrize("path, stride", [("pool3", 8), ("pool4", 16), ("fc7", 32)])
def test_output_is_aligned_with_input(path, stride):
    # FCN-8s's crops (5, 9, 31) align the score map with the input: a lone bright pixel
    # is answered around that pixel, within half the path's stride, at every phase.
    size, points = 112, range(24, 24 + 2 * stride)
    images = torch.zeros(len(points), 3, size, size)
    for n, y in enumerate(points):
        images[n, 2, y, size - 1 - y] = 255  # blue: BGR channel 0 after preprocessing
    with torch.no_grad():
        out = _point_net(path)(images)[:, 0]
    for n, y in enumerate(points):
        for axis, at in ((1, y), (0, size - 1 - y)):
            hit = np.flatnonzero((out[n] > 0).any(axis).numpy())
            assert hit[0] <= at <= hit[-1]
            assert abs((hit[0] + hit[-1]) / 2 - at) <= stride / 2 + 1


def test_segment_returns_argmax_train_ids():
    model = FCN8s(WIDTHS, FC)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.score_pool3.bias[7] = 1
        model.upscore8.weight[7, 7] = 1  # 16x16 box at stride 8 covers every pixel
    images = np.random.default_rng(0).integers(0, 256, (3, 24, 40, 3), dtype=np.uint8)
    maps = segment(model, images, "cpu", batch_size=2)
    assert maps.dtype == np.uint8 and maps.shape == (3, 24, 40)
    assert (maps == 7).all()
    with pytest.raises(ValueError, match="uint8 RGB"):
        segment(model, images.astype(np.float32), "cpu")


def test_converted_round_trip_and_load_by_extension(tmp_path):
    caffe = write_caffemodel(tmp_path / "w.caffemodel", random_weights(seed=3))
    model = fcn8s_from_caffemodel(caffe, model=FCN8s(WIDTHS, FC))
    save_converted(model, tmp_path / "fcn.pt")
    assert [p.name for p in tmp_path.iterdir()].count("fcn.pt") == 1
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    loaded = load_segmenter(tmp_path / "fcn.pt")
    assert loaded.widths == WIDTHS and not loaded.training
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    torch.save({"weights": 1}, tmp_path / "other.pth")
    with pytest.raises(CaffeModelError, match="format tag"):
        load_converted(tmp_path / "other.pth")
    with pytest.raises(CaffeModelError, match=r"\.caffemodel, \.pt or \.pth"):
        load_segmenter(tmp_path / "fcn.onnx")
    save_converted(model, tmp_path / "again" / "fcn.pt")  # same tensors: same bytes (DVC md5)
    assert (tmp_path / "again" / "fcn.pt").read_bytes() == (tmp_path / "fcn.pt").read_bytes()
