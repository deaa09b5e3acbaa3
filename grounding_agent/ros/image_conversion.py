"""sensor_msgs images and camera info <-> the core's arrays and types (replaces cv_bridge).

Only unpacks and packs message fields; the pixel work is `grounding_agent.core.image_codec`.
Message data is always assigned from `bytes` (rclpy validates numpy arrays element by element,
about a thousand times slower).

The node's camera subscriptions are raw (`create_subscription(..., raw=True)`): the `*_from_cdr`
functions read an Image or CompressedImage straight from its serialized bytes. The header fields
(size, encoding, step) are read and checked before the pixels are touched, so an oversized frame
is refused without a deserialized copy, and an accepted frame is copied once, from the bytes the
middleware handed over into its array (deserializing a 640x480 frame into a message first cost
about 4 ms per frame with the interpreter lock held, time the inference thread waited for).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from builtin_interfaces.msg import Time
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from grounding_agent.core.errors import ImageConversionError
from grounding_agent.core.image_codec import (
    DEFAULT_MAX_IMAGE_BYTES,
    RawImage,
    decode_compressed,
    encode_compressed,
    encode_raw,
    raw_to_depth_metres,
    raw_to_rgb,
)
from grounding_agent.core.types import CameraIntrinsics, Stamp

__all__ = [
    'StampedImage',
    'compressed_msg_from_rgb',
    'depth_from_cdr',
    'depth_from_image_msg',
    'header_with',
    'image_msg_from_array',
    'intrinsics_from_camera_info',
    'raw_image_from_msg',
    'rgb_from_compressed_cdr',
    'rgb_from_compressed_msg',
    'rgb_from_image_cdr',
    'rgb_from_image_msg',
    'stamp_from_msg',
    'stamp_to_msg',
]


def stamp_from_msg(stamp: Time) -> Stamp:
    return Stamp(sec=int(stamp.sec), nanosec=int(stamp.nanosec))


def stamp_to_msg(stamp: Stamp) -> Time:
    return Time(sec=stamp.sec, nanosec=stamp.nanosec)


def header_with(stamp: Stamp, frame_id: str) -> Header:
    return Header(stamp=stamp_to_msg(stamp), frame_id=frame_id)


def raw_image_from_msg(msg: Image) -> RawImage:
    return RawImage(
        encoding=msg.encoding,
        width=int(msg.width),
        height=int(msg.height),
        step=int(msg.step),
        data=msg.data,
        is_bigendian=bool(msg.is_bigendian),
    )


def rgb_from_image_msg(
    msg: Image, *, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES
) -> npt.NDArray[np.uint8]:
    """HxWx3 uint8 RGB; raises ImageConversionError with the reason."""
    return raw_to_rgb(raw_image_from_msg(msg), max_bytes=max_bytes)


def depth_from_image_msg(
    msg: Image, *, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES
) -> npt.NDArray[np.float32]:
    """HxW float32 metres (NaN = unknown); raises ImageConversionError with the reason."""
    return raw_to_depth_metres(raw_image_from_msg(msg), max_bytes=max_bytes)


def rgb_from_compressed_msg(
    msg: CompressedImage, *, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES
) -> npt.NDArray[np.uint8]:
    return decode_compressed(msg.data, msg.format, max_bytes=max_bytes)


def image_msg_from_array(
    image: npt.NDArray[Any], *, encoding: str = 'rgb8', header: Header | None = None
) -> Image:
    """An Image message from an array (see `encode_raw` for what each encoding takes)."""
    raw = encode_raw(image, encoding)
    msg = Image(
        header=header or Header(),
        height=raw.height,
        width=raw.width,
        encoding=raw.encoding,
        is_bigendian=int(raw.is_bigendian),
        step=raw.step,
    )
    msg.data = raw.data
    return msg


def compressed_msg_from_rgb(
    image: npt.NDArray[np.uint8], *, image_format: str = 'jpeg', header: Header | None = None
) -> CompressedImage:
    msg = CompressedImage(header=header or Header(), format=image_format)
    msg.data = encode_compressed(image, image_format)
    return msg


def intrinsics_from_camera_info(msg: CameraInfo) -> CameraIntrinsics | None:
    """Pinhole intrinsics from K; None for an uncalibrated camera (fx or fy of zero)."""
    k = [float(v) for v in msg.k]
    fx, fy, cx, cy = k[0], k[4], k[2], k[5]
    if not all(np.isfinite([fx, fy, cx, cy])) or fx <= 0.0 or fy <= 0.0:
        return None
    return CameraIntrinsics(
        fx=fx, fy=fy, cx=cx, cy=cy, width=int(msg.width), height=int(msg.height)
    )


# -- serialized messages (raw subscriptions) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class StampedImage:
    """A converted image with its message header's stamp and frame."""

    image: npt.NDArray[Any]
    stamp: Stamp
    frame_id: str


class _NotXcdr1Error(ImageConversionError):
    """The bytes use another serialization than XCDR1 (read them through rclpy instead)."""


class _CdrReader:
    """Reads the fields of a CDR (XCDR1) serialized ROS message in order, without copying.

    Alignment is relative to the end of the 4-byte encapsulation header. Any field that would
    run past the end of the buffer raises ImageConversionError (a truncated or lying message).
    """

    # XCDR1 big / little endian: what rmw_fastrtps and rmw_cyclonedds put on the wire for ROS
    # messages. Other encodings go through rclpy's deserialization (no early size check).
    _ENCAPSULATIONS: ClassVar[dict[bytes, str]] = {b'\x00\x00': '>', b'\x00\x01': '<'}

    def __init__(self, serialized: bytes) -> None:
        self._view = memoryview(serialized).cast('B')
        order = self._ENCAPSULATIONS.get(bytes(self._view[:2]))
        if order is None:
            raise _NotXcdr1Error(
                f'unsupported serialization (encapsulation {bytes(self._view[:2]).hex()}): '
                'expected CDR'
            )
        self._u32 = struct.Struct(order + 'I')
        self._i32 = struct.Struct(order + 'i')
        self._pos = 4

    def _take(self, size: int, align: int = 1) -> int:
        self._pos += -(self._pos - 4) % align
        start = self._pos
        if size < 0 or start + size > len(self._view):
            raise ImageConversionError(
                f'message truncated: a field of {size} bytes at offset {start} of '
                f'{len(self._view)}'
            )
        self._pos = start + size
        return start

    def uint32(self) -> int:
        return int(self._u32.unpack_from(self._view, self._take(4, 4))[0])

    def int32(self) -> int:
        return int(self._i32.unpack_from(self._view, self._take(4, 4))[0])

    def uint8(self) -> int:
        return int(self._view[self._take(1)])

    def string(self) -> str:
        length = self.uint32()  # counts the closing NUL
        start = self._take(length)
        return bytes(self._view[start : start + max(0, length - 1)]).decode('utf-8', 'replace')

    def octets_length(self) -> int:
        """The declared length of a uint8[] field (read before deciding to look at it)."""
        return self.uint32()

    def octets(self, length: int) -> memoryview:
        start = self._take(length)
        return self._view[start : start + length]


def _cdr_header(reader: _CdrReader) -> tuple[Stamp, str]:
    sec = reader.int32()
    nanosec = reader.uint32()
    return Stamp(sec=sec, nanosec=nanosec), reader.string()


def _raw_image_from_cdr(serialized: bytes, *, max_bytes: int) -> tuple[RawImage, Stamp, str]:
    """The fields of a serialized sensor_msgs/Image, refused on its declared size first."""
    reader = _CdrReader(serialized)
    stamp, frame_id = _cdr_header(reader)
    height, width = reader.uint32(), reader.uint32()
    encoding = reader.string()
    is_bigendian = bool(reader.uint8())
    step = reader.uint32()
    length = reader.octets_length()
    declared = max(step * height, length)
    if declared > max_bytes:
        raise ImageConversionError(
            f'image of {declared} bytes ({width}x{height} {encoding}) exceeds '
            f'max_image_bytes={max_bytes}'
        )
    raw = RawImage(
        encoding=encoding,
        width=width,
        height=height,
        step=step,
        data=reader.octets(length),
        is_bigendian=is_bigendian,
    )
    return raw, stamp, frame_id


def rgb_from_image_cdr(
    serialized: bytes, *, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES
) -> StampedImage:
    """HxWx3 uint8 RGB from a serialized sensor_msgs/Image; raises ImageConversionError with
    the reason (an oversized frame before its pixels are read)."""
    try:
        raw, stamp, frame_id = _raw_image_from_cdr(serialized, max_bytes=max_bytes)
    except _NotXcdr1Error:
        msg = deserialize_message(serialized, Image)
        return StampedImage(
            rgb_from_image_msg(msg, max_bytes=max_bytes),
            stamp_from_msg(msg.header.stamp),
            msg.header.frame_id,
        )
    return StampedImage(raw_to_rgb(raw, max_bytes=max_bytes), stamp, frame_id)


def depth_from_cdr(serialized: bytes, *, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES) -> StampedImage:
    """HxW float32 metres from a serialized sensor_msgs/Image (16UC1 mm or 32FC1 m)."""
    try:
        raw, stamp, frame_id = _raw_image_from_cdr(serialized, max_bytes=max_bytes)
    except _NotXcdr1Error:
        msg = deserialize_message(serialized, Image)
        return StampedImage(
            depth_from_image_msg(msg, max_bytes=max_bytes),
            stamp_from_msg(msg.header.stamp),
            msg.header.frame_id,
        )
    return StampedImage(raw_to_depth_metres(raw, max_bytes=max_bytes), stamp, frame_id)


def rgb_from_compressed_cdr(
    serialized: bytes, *, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES
) -> StampedImage:
    """HxWx3 uint8 RGB from a serialized sensor_msgs/CompressedImage (JPEG or PNG)."""
    try:
        reader = _CdrReader(serialized)
    except _NotXcdr1Error:
        msg = deserialize_message(serialized, CompressedImage)
        return StampedImage(
            rgb_from_compressed_msg(msg, max_bytes=max_bytes),
            stamp_from_msg(msg.header.stamp),
            msg.header.frame_id,
        )
    stamp, frame_id = _cdr_header(reader)
    image_format = reader.string()
    length = reader.octets_length()
    if length > max_bytes:
        raise ImageConversionError(
            f'compressed image of {length} bytes exceeds max_image_bytes={max_bytes}'
        )
    payload = bytes(reader.octets(length))  # compressed: small, and decoded from bytes
    return StampedImage(
        decode_compressed(payload, image_format, max_bytes=max_bytes), stamp, frame_id
    )
