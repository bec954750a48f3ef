"""JPEGs decoded by torchvision give exactly PIL's pixels and PIL's reasons for bad files."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from mlcycle.data.images import UnreadableImage, _decode_jpeg, decode_image


def photo(height: int, width: int, channels: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients with noise: what JPEG encoders meet in photographs."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    planes = [np.sin(x / 7 + k) * 60 + np.cos(y / 5 + 2 * k) * 60 + 128 for k in range(channels)]
    noisy = np.stack(planes, -1) + rng.normal(0, 20, (height, width, channels))
    return np.clip(noisy, 0, 255).astype(np.uint8).squeeze()


def jpeg(array: np.ndarray, **options) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, "JPEG", **options)
    return out.getvalue()


def decoded_by_torchvision(data: bytes, channels: int) -> bool:
    with Image.open(io.BytesIO(data)) as img:
        return _decode_jpeg(data, img, channels) is not None


def outcome(data: bytes, channels: int, fast: bool) -> np.ndarray | str:
    try:
        return decode_image(data, channels, fast=fast)
    except UnreadableImage as exc:
        return f"unreadable: {exc}"


def assert_same_as_pil(data: bytes, channels: int) -> None:
    fast, pil = outcome(data, channels, True), outcome(data, channels, False)
    if isinstance(pil, str) or isinstance(fast, str):
        assert fast == pil
    else:
        assert fast.dtype == pil.dtype == np.uint8 and fast.shape == pil.shape
        assert fast.flags.c_contiguous
        assert np.array_equal(fast, pil)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(
    ("shape", "options"),
    [
        ((64, 64), {"quality": 90}),
        ((17, 23), {"quality": 75}),
        ((40, 56, 3), {"quality": 95, "subsampling": 0}),  # 4:4:4
        ((40, 56, 3), {"quality": 60, "subsampling": 1}),  # 4:2:2
        ((33, 47, 3), {"quality": 90, "subsampling": 2}),  # 4:2:0 with odd sides
        ((48, 48, 3), {"quality": 85, "progressive": True}),
        ((48, 48), {"quality": 85, "progressive": True, "optimize": True}),
    ],
)
def test_jpeg_pixels_are_pils(shape, options, channels):
    data = jpeg(photo(shape[0], shape[1], shape[2] if len(shape) == 3 else 1), **options)
    assert_same_as_pil(data, channels)
    colour_to_grey = len(shape) == 3 and channels == 1  # PIL's luma: PIL decodes those
    assert decoded_by_torchvision(data, channels) is not colour_to_grey


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_as_pil_applies_it(orientation, channels):
    array = photo(24, 40, 3 if channels == 3 else 1)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = jpeg(array, quality=90, exif=exif.tobytes())
    assert decoded_by_torchvision(data, channels)
    assert_same_as_pil(data, channels)
    expected_shape = (40, 24) if orientation >= 5 else (24, 40)
    assert decode_image(data, channels).shape[:2] == expected_shape


def test_xmp_orientation_as_pil_reads_it():
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description tiff:Orientation="6"/></x:xmpmeta>'
    data = jpeg(photo(24, 40, 3), quality=90, xmp=xmp)
    assert_same_as_pil(data, 3)
    assert decode_image(data, 3).shape[:2] == (40, 24)


def test_cmyk_and_png_stay_with_pil():
    cmyk = io.BytesIO()
    Image.fromarray(photo(20, 20, 3)).convert("CMYK").save(cmyk, "JPEG")
    png = io.BytesIO()
    Image.fromarray(photo(20, 20, 3)).save(png, "PNG")
    for data in (cmyk.getvalue(), png.getvalue()):
        assert not decoded_by_torchvision(data, 3)
        assert_same_as_pil(data, 3)


def test_truncated_jpeg_keeps_its_reason():
    data = jpeg(photo(64, 64, 3), quality=90)
    cut = data[: len(data) // 2]
    with pytest.raises(UnreadableImage, match=f"^truncated after {len(cut)} bytes$"):
        decode_image(cut, 3)


def test_damaged_jpegs_fail_or_decode_as_with_pil():
    """Bytes changed, cut or inserted: both decoders refuse (with PIL's reason) or agree."""
    rng = np.random.default_rng(3)
    refused = 0
    for trial in range(120):
        data = bytearray(jpeg(photo(32, 32, 1 + 2 * (trial % 2), seed=trial), quality=80))
        kind = trial % 3
        if kind == 0:
            for _ in range(3):
                data[int(rng.integers(2, len(data)))] = int(rng.integers(256))
        elif kind == 1:
            data = data[: int(rng.integers(2, len(data)))]
        else:
            at = int(rng.integers(2, len(data)))
            data[at:at] = rng.integers(0, 256, int(rng.integers(1, 40)), dtype=np.uint8).tobytes()
        assert_same_as_pil(bytes(data), 3)
        refused += isinstance(outcome(bytes(data), 3, False), str)
    assert 10 < refused < 110  # both kinds of outcome were met
