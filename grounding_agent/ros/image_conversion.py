"""sensor_msgs images and camera info <-> the core's arrays and types (replaces cv_bridge).

Only unpacks and packs message fields; the pixel work is `grounding_agent.core.image_codec`.
Message data is always assigned from `bytes` (rclpy validates numpy arrays element by element,
about a thousand times slower).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

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
    'compressed_msg_from_rgb',
    'depth_from_image_msg',
    'header_with',
    'image_msg_from_array',
    'intrinsics_from_camera_info',
    'raw_image_from_msg',
    'rgb_from_compressed_msg',
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
