"""Raw image fields <-> numpy: every encoding, row padding, byte order, and every bad header."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from grounding_agent.core.errors import ImageConversionError
from grounding_agent.core.image_codec import (
    RawImage,
    compressed_image_size,
    decode_compressed,
    encode_compressed,
    encode_raw,
    raw_to_array,
    raw_to_depth_metres,
    raw_to_rgb,
)

RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)


def padded(raw: RawImage, pad: int) -> RawImage:
    """The same image with `pad` junk bytes at the end of every row."""
    rows = np.frombuffer(raw.data, dtype=np.uint8).reshape(raw.height, raw.step)
    junk = np.full((raw.height, pad), 0xAB, dtype=np.uint8)
    data = np.concatenate([rows, junk], axis=1).tobytes()
    return RawImage(raw.encoding, raw.width, raw.height, raw.step + pad, data, raw.is_bigendian)


@pytest.mark.parametrize(
    ('encoding', 'stored'),
    [
        ('rgb8', RGB),
        ('bgr8', RGB[:, :, ::-1]),
        ('8UC3', RGB[:, :, ::-1]),
        ('rgba8', np.concatenate([RGB, np.full((5, 7, 1), 9, np.uint8)], axis=2)),
        ('bgra8', np.concatenate([RGB[:, :, ::-1], np.full((5, 7, 1), 9, np.uint8)], axis=2)),
    ],
)
@pytest.mark.parametrize('pad', [0, 3])
def test_colour_encodings_decode_to_rgb(encoding: str, stored: np.ndarray, pad: int) -> None:
    channels = stored.shape[2]
    raw = RawImage(encoding, 7, 5, 7 * channels, np.ascontiguousarray(stored).tobytes())
    rgb = raw_to_rgb(padded(raw, pad) if pad else raw)
    assert rgb.dtype == np.uint8
    assert rgb.flags.c_contiguous
    np.testing.assert_array_equal(rgb, RGB)


def test_mono8_becomes_grey_rgb() -> None:
    grey = RGB[:, :, 0]
    rgb = raw_to_rgb(padded(RawImage('mono8', 7, 5, 7, grey.tobytes()), 1))
    np.testing.assert_array_equal(rgb, np.stack([grey] * 3, axis=2))


def test_rgb_result_does_not_alias_the_message_buffer() -> None:
    data = bytearray(RGB.tobytes())
    rgb = raw_to_rgb(RawImage('rgb8', 7, 5, 21, data))
    data[0] ^= 0xFF
    assert rgb[0, 0, 0] == RGB[0, 0, 0]


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'rgba8', 'bgra8'])
def test_encode_then_decode_round_trips(encoding: str) -> None:
    raw = encode_raw(RGB, encoding)
    assert raw.step == raw.width * (4 if 'a' in encoding else 3)
    assert isinstance(raw.data, bytes)
    np.testing.assert_array_equal(raw_to_rgb(raw), RGB)


@pytest.mark.parametrize('bigendian', [False, True])
@pytest.mark.parametrize('pad', [0, 1, 2])
def test_depth_16uc1_millimetres_to_metres(bigendian: bool, pad: int) -> None:
    millimetres = np.array([[0, 500, 1000], [65535, 1, 2500]], dtype=np.uint16)
    data = millimetres.astype('>u2' if bigendian else '<u2').tobytes()
    raw = padded(RawImage('16UC1', 3, 2, 6, data, is_bigendian=bigendian), pad)
    depth = raw_to_depth_metres(raw)
    assert depth.dtype == np.float32
    expected = np.array([[np.nan, 0.5, 1.0], [65.535, 0.001, 2.5]], dtype=np.float32)
    np.testing.assert_allclose(depth, expected, rtol=1e-6)


@pytest.mark.parametrize('bigendian', [False, True])
def test_depth_32fc1_metres_with_invalid_readings_as_nan(bigendian: bool) -> None:
    metres = np.array([[1.25, 0.0, np.nan], [np.inf, -1.0, 3.5]], dtype=np.float32)
    data = metres.astype('>f4' if bigendian else '<f4').tobytes()
    depth = raw_to_depth_metres(RawImage('32FC1', 3, 2, 12, data, is_bigendian=bigendian))
    expected = np.array([[1.25, np.nan, np.nan], [np.nan, np.nan, 3.5]], dtype=np.float32)
    np.testing.assert_array_equal(depth, expected)


def test_native_depth_is_a_view_of_the_buffer() -> None:
    data = np.arange(6, dtype=np.uint16).astype('=u2').tobytes()
    raw = RawImage('16UC1', 3, 2, 6, data, is_bigendian=sys.byteorder == 'big')
    array = raw_to_array(raw)
    assert array.base is not None
    np.testing.assert_array_equal(array, np.arange(6).reshape(2, 3))


@pytest.mark.parametrize(
    ('raw', 'message'),
    [
        (RawImage('yuv422', 2, 2, 4, bytes(8)), 'unsupported image encoding'),
        (RawImage('rgb8', 0, 2, 0, b''), 'empty image'),
        (RawImage('rgb8', 2, 2, 6, b''), 'data holds 0 bytes'),
        (RawImage('rgb8', 2, 2, 5, bytes(10)), 'step 5 is smaller'),
        (RawImage('rgb8', 2, 2, 6, bytes(13)), 'data holds 13 bytes'),
        (RawImage('rgb8', 2, 2, 6, bytes(11)), 'data holds 11 bytes'),
        (RawImage('16UC1', 2, 2, 4, bytes(8)), 'depth encoding'),
        # The header alone says 100 MB: refused before the (tiny) data is looked at.
        (RawImage('rgb8', 10_000, 3_334, 30_000, bytes(16)), 'exceeds max_image_bytes'),
    ],
)
def test_bad_colour_headers_raise_with_a_reason(raw: RawImage, message: str) -> None:
    with pytest.raises(ImageConversionError, match=message):
        raw_to_rgb(raw)


def test_oversized_data_is_refused_even_with_a_small_header() -> None:
    with pytest.raises(ImageConversionError, match='exceeds max_image_bytes'):
        raw_to_rgb(RawImage('rgb8', 2, 2, 6, bytes(4096)), max_bytes=1024)


def test_colour_encoding_is_not_depth() -> None:
    with pytest.raises(ImageConversionError, match='unsupported depth encoding'):
        raw_to_depth_metres(RawImage('rgb8', 1, 1, 3, bytes(3)))


@pytest.mark.parametrize('image_format', ['png', 'jpeg'])
def test_compressed_round_trip(image_format: str) -> None:
    image = np.zeros((40, 60, 3), dtype=np.uint8)
    image[10:30, 20:50] = (220, 30, 30)
    payload = encode_compressed(image, image_format)
    assert compressed_image_size(payload) == (60, 40)
    decoded = decode_compressed(payload, image_format)
    assert decoded.shape == (40, 60, 3)
    error = np.abs(decoded.astype(int) - image.astype(int))
    if image_format == 'png':
        assert error.max() == 0
    else:  # lossy: colours stay put (no channel swap) away from the edges JPEG blurs
        assert error[15:25, 25:45].max() <= 25
        assert error.mean() < 5


@pytest.mark.parametrize(
    ('payload', 'message'),
    [
        (b'', 'empty'),
        (b'GIF89a' + bytes(20), 'neither JPEG nor PNG'),
        (b'\x89PNG\r\n\x1a\n' + bytes(8) + (100_000).to_bytes(4, 'big') * 2, 'declares'),
        (b'\x89PNG\r\n\x1a\n' + bytes(8) + (16).to_bytes(4, 'big') * 2 + bytes(8), 'corrupt'),
    ],
)
def test_bad_compressed_payloads_raise(payload: bytes, message: str) -> None:
    with pytest.raises(ImageConversionError, match=message):
        decode_compressed(payload, 'png')


def test_truncated_jpeg_is_refused() -> None:
    payload = encode_compressed(RGB, 'jpeg')
    with pytest.raises(ImageConversionError):
        decode_compressed(payload[:30], 'jpeg')
