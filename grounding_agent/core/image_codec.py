"""Camera images as raw message fields <-> numpy arrays, without ROS and without cv_bridge.

A `sensor_msgs/Image` is (encoding, width, height, step, is_bigendian, data); this module turns
those fields into the arrays the agent works on (HxWx3 uint8 RGB colour, HxW float32 metres
depth) and back, and decodes `CompressedImage` payloads (JPEG, PNG) with OpenCV. Every size is
checked against the header before any pixel is touched, so a lying or oversized header costs an
`ImageConversionError`, never a crash or a huge allocation.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from grounding_agent.core.errors import ImageConversionError

__all__ = [
    'COLOUR_ENCODINGS',
    'DEFAULT_MAX_IMAGE_BYTES',
    'DEPTH_ENCODINGS',
    'PixelLayout',
    'RawImage',
    'check_raw_header',
    'compressed_image_size',
    'decode_compressed',
    'encode_compressed',
    'encode_raw',
    'raw_to_array',
    'raw_to_depth_metres',
    'raw_to_rgb',
]

#: 50 MB: a 4K RGB frame is 25 MB; anything larger on a camera topic is a mistake or an attack.
DEFAULT_MAX_IMAGE_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class PixelLayout:
    """How one encoding stores a pixel: numpy scalar type, channels, and for depth the scale."""

    dtype: str
    channels: int
    metres_per_unit: float = 1.0

    @property
    def bytes_per_pixel(self) -> int:
        return np.dtype(self.dtype).itemsize * self.channels


COLOUR_ENCODINGS: dict[str, PixelLayout] = {
    'rgb8': PixelLayout('u1', 3),
    'bgr8': PixelLayout('u1', 3),
    'rgba8': PixelLayout('u1', 4),
    'bgra8': PixelLayout('u1', 4),
    'mono8': PixelLayout('u1', 1),
    '8UC1': PixelLayout('u1', 1),
    '8UC3': PixelLayout('u1', 3),  # OpenCV's habit: 8UC3 is BGR
}

# Depth cameras publish 16UC1 in millimetres (REP 118) and 32FC1 in metres.
DEPTH_ENCODINGS: dict[str, PixelLayout] = {
    '16UC1': PixelLayout('u2', 1, 0.001),
    'mono16': PixelLayout('u2', 1, 0.001),
    '32FC1': PixelLayout('f4', 1, 1.0),
}

_ALL_ENCODINGS: dict[str, PixelLayout] = {**COLOUR_ENCODINGS, **DEPTH_ENCODINGS}


@dataclass(frozen=True, slots=True)
class RawImage:
    """The fields of a `sensor_msgs/Image` (data: any bytes-like object)."""

    encoding: str
    width: int
    height: int
    step: int
    data: Any
    is_bigendian: bool = False


def check_raw_header(raw: RawImage, *, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES) -> PixelLayout:
    """The layout of `raw` after checking every header field against the data it carries.

    The size limit is checked first, on the header alone, so a huge image is refused without
    reading (or copying) its pixels.
    """
    layout = _ALL_ENCODINGS.get(raw.encoding)
    if layout is None:
        known = ', '.join(sorted(_ALL_ENCODINGS))
        raise ImageConversionError(
            f'unsupported image encoding {raw.encoding!r}; use one of {known}'
        )
    if raw.width <= 0 or raw.height <= 0:
        raise ImageConversionError(f'empty image: {raw.width}x{raw.height}')
    declared = raw.step * raw.height
    data_len = len(memoryview(raw.data).cast('B'))
    if max(declared, data_len) > max_bytes:
        raise ImageConversionError(
            f'image of {max(declared, data_len)} bytes ({raw.width}x{raw.height} {raw.encoding}) '
            f'exceeds max_image_bytes={max_bytes}'
        )
    row_bytes = raw.width * layout.bytes_per_pixel
    if raw.step < row_bytes:
        raise ImageConversionError(
            f'step {raw.step} is smaller than one row of {raw.width} {raw.encoding} pixels '
            f'({row_bytes} bytes)'
        )
    if data_len != declared:
        raise ImageConversionError(
            f'data holds {data_len} bytes but step x height = {raw.step} x {raw.height} = '
            f'{declared}'
        )
    return layout


def raw_to_array(raw: RawImage, *, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES) -> npt.NDArray[Any]:
    """The pixels of `raw` as HxW (one channel) or HxWxC, in native byte order.

    A view of `raw.data` when the byte order is native (row padding is skipped with strides), a
    copy otherwise. Callers that keep the array must not mutate the buffer afterwards.
    """
    layout = check_raw_header(raw, max_bytes=max_bytes)
    dtype = np.dtype(layout.dtype)
    if dtype.itemsize > 1:
        dtype = dtype.newbyteorder('>' if raw.is_bigendian else '<')
    buffer = np.frombuffer(raw.data, dtype=np.uint8)
    if raw.step % dtype.itemsize:
        # A row stride that is not a multiple of the pixel size cannot be expressed as numpy
        # strides; copy each row out instead.
        rows = buffer.reshape(raw.height, raw.step)[:, : raw.width * layout.bytes_per_pixel]
        pixels = np.ascontiguousarray(rows).view(dtype)
    else:
        pixels = np.ndarray(
            shape=(raw.height, raw.width * layout.channels),
            dtype=dtype,
            buffer=buffer,
            strides=(raw.step, dtype.itemsize),
        )
    if layout.channels > 1:
        pixels = pixels.reshape(raw.height, raw.width, layout.channels)
    if not pixels.dtype.isnative:
        pixels = pixels.astype(pixels.dtype.newbyteorder('='))
    return pixels


def raw_to_rgb(
    raw: RawImage, *, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES
) -> npt.NDArray[np.uint8]:
    """A colour message as a contiguous HxWx3 uint8 RGB array (always a fresh copy)."""
    if raw.encoding not in COLOUR_ENCODINGS:
        if raw.encoding in DEPTH_ENCODINGS:
            raise ImageConversionError(
                f'{raw.encoding!r} is a depth encoding; a colour image was expected'
            )
        check_raw_header(raw, max_bytes=max_bytes)  # raises with the list of encodings
    pixels = raw_to_array(raw, max_bytes=max_bytes)
    encoding = raw.encoding
    if encoding in ('mono8', '8UC1'):
        rgb = np.repeat(pixels[:, :, None], 3, axis=2)
    elif encoding in ('bgr8', '8UC3'):
        rgb = pixels[:, :, ::-1]
    elif encoding == 'bgra8':
        rgb = pixels[:, :, 2::-1]
    elif encoding == 'rgba8':
        rgb = pixels[:, :, :3]
    else:
        rgb = pixels
    # Always a copy: the frame outlives the message and crosses into the inference thread.
    return np.array(rgb, dtype=np.uint8, order='C', copy=True)


def raw_to_depth_metres(
    raw: RawImage, *, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES
) -> npt.NDArray[np.float32]:
    """A depth message as HxW float32 metres; 0, negative and non-finite readings become NaN."""
    layout = DEPTH_ENCODINGS.get(raw.encoding)
    if layout is None:
        raise ImageConversionError(
            f'unsupported depth encoding {raw.encoding!r}; use 16UC1 (mm) or 32FC1 (m)'
        )
    pixels = raw_to_array(raw, max_bytes=max_bytes)
    depth = pixels.astype(np.float32) * np.float32(layout.metres_per_unit)
    with np.errstate(invalid='ignore'):
        depth[~(np.isfinite(depth) & (depth > 0))] = np.nan
    return depth


def encode_raw(image: npt.NDArray[Any], encoding: str) -> RawImage:
    """An array as message fields (tightly packed rows, native byte order, data as bytes).

    rgb8 / bgr8 / rgba8 / bgra8 take HxWx3|4 uint8 RGB(A) and reorder channels as the encoding
    says; mono8 takes HxW uint8; 16UC1 takes HxW uint16 millimetres; 32FC1 HxW float32 metres.
    """
    layout = _ALL_ENCODINGS.get(encoding)
    if layout is None:
        raise ImageConversionError(f'cannot encode {encoding!r}')
    array = np.asarray(image)
    expected_ndim = 2 if layout.channels == 1 else 3
    if array.ndim != expected_ndim or (expected_ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageConversionError(
            f'{encoding} needs an array of {expected_ndim} dimensions, got shape {array.shape}'
        )
    if encoding in ('bgr8', '8UC3'):
        array = array[:, :, 2::-1]
    elif encoding == 'bgra8':
        array = array[:, :, [2, 1, 0, 3]] if array.shape[2] == 4 else _add_alpha(array[:, :, ::-1])
    elif encoding == 'rgba8' and array.shape[2] == 3:
        array = _add_alpha(array)
    elif encoding == 'rgb8':
        array = array[:, :, :3]
    array = np.ascontiguousarray(array, dtype=np.dtype(layout.dtype).newbyteorder('='))
    height, width = array.shape[:2]
    return RawImage(
        encoding=encoding,
        width=int(width),
        height=int(height),
        step=int(width * layout.bytes_per_pixel),
        data=array.tobytes(),
        is_bigendian=sys.byteorder == 'big',
    )


def _add_alpha(rgb: npt.NDArray[Any]) -> npt.NDArray[Any]:
    alpha = np.full((*rgb.shape[:2], 1), 255, dtype=np.uint8)
    return np.concatenate([rgb, alpha], axis=2)


def compressed_image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) read from a PNG or JPEG header without decoding; None if not found.

    Lets a decoder refuse a small file that declares a gigantic image before allocating it.
    """
    if data[:8] == b'\x89PNG\r\n\x1a\n' and len(data) >= 24:
        width, height = struct.unpack('>II', data[16:24])
        return int(width), int(height)
    if data[:2] != b'\xff\xd8':
        return None
    position = 2
    # Walk the JPEG segments to the first start-of-frame marker (SOF0..SOF15 except DHT, JPG, DAC).
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        (length,) = struct.unpack('>H', data[position + 2 : position + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if position + 9 > len(data):
                return None
            height, width = struct.unpack('>HH', data[position + 5 : position + 9])
            return int(width), int(height)
        position += 2 + length
    return None


def decode_compressed(
    data: bytes, image_format: str = '', *, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES
) -> npt.NDArray[np.uint8]:
    """A JPEG or PNG payload (sensor_msgs/CompressedImage) as HxWx3 uint8 RGB.

    `image_format` is the message's `format` field ('jpeg', 'png', 'rgb8; jpeg compressed
    bgr8', ...); the payload's magic bytes decide, the field is only quoted in errors.
    """
    import cv2

    payload = bytes(memoryview(data).cast('B'))
    if not payload:
        raise ImageConversionError('compressed image is empty')
    if len(payload) > max_bytes:
        raise ImageConversionError(
            f'compressed image of {len(payload)} bytes exceeds max_image_bytes={max_bytes}'
        )
    size = compressed_image_size(payload)
    if size is None:
        raise ImageConversionError(
            f'compressed image (format {image_format!r}) is neither JPEG nor PNG'
        )
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageConversionError(f'compressed image declares an empty size {width}x{height}')
    if width * height * 3 > max_bytes:
        raise ImageConversionError(
            f'compressed image declares {width}x{height} pixels, more than '
            f'max_image_bytes={max_bytes} once decoded'
        )
    decoded = cv2.imdecode(np.frombuffer(payload, dtype=np.uint8), cv2.IMREAD_COLOR)
    if decoded is None:
        raise ImageConversionError(
            f'compressed image (format {image_format!r}, {len(payload)} bytes) could not be '
            'decoded: truncated or corrupt'
        )
    return np.ascontiguousarray(decoded[:, :, ::-1])


def encode_compressed(image: npt.NDArray[np.uint8], image_format: str = 'jpeg') -> bytes:
    """HxWx3 uint8 RGB as JPEG or PNG bytes (for CompressedImage publishers and tests)."""
    import cv2

    extension = {'jpeg': '.jpg', 'jpg': '.jpg', 'png': '.png'}.get(image_format.lower())
    if extension is None:
        raise ImageConversionError(f'cannot compress to {image_format!r}; use jpeg or png')
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ImageConversionError(f'expected HxWx3 uint8 RGB, got {array.shape} {array.dtype}')
    ok, encoded = cv2.imencode(extension, np.ascontiguousarray(array[:, :, ::-1]))
    if not ok:
        raise ImageConversionError(f'OpenCV could not encode a {array.shape} image as {extension}')
    return bytes(encoded.tobytes())
