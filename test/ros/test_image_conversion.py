"""sensor_msgs <-> arrays through the message classes themselves (no DDS needed)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip('sensor_msgs.msg')

from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from grounding_agent.core.errors import ImageConversionError
from grounding_agent.core.types import CameraIntrinsics, Stamp
from grounding_agent.ros.image_conversion import (
    compressed_msg_from_rgb,
    depth_from_cdr,
    depth_from_image_msg,
    header_with,
    image_msg_from_array,
    intrinsics_from_camera_info,
    rgb_from_compressed_cdr,
    rgb_from_compressed_msg,
    rgb_from_image_cdr,
    rgb_from_image_msg,
    stamp_from_msg,
)

RGB = np.random.default_rng(3).integers(0, 256, size=(6, 8, 3), dtype=np.uint8)


def over_the_wire(msg: object) -> object:
    """The message as a subscriber receives it (serialised and back)."""
    return deserialize_message(serialize_message(msg), type(msg))


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'rgba8', 'bgra8'])
def test_colour_message_round_trip(encoding: str) -> None:
    header = header_with(Stamp(sec=12, nanosec=34), 'camera_optical')
    msg = over_the_wire(image_msg_from_array(RGB, encoding=encoding, header=header))
    assert isinstance(msg, Image)
    assert (msg.encoding, msg.width, msg.height) == (encoding, 8, 6)
    assert stamp_from_msg(msg.header.stamp) == Stamp(sec=12, nanosec=34)
    assert msg.header.frame_id == 'camera_optical'
    np.testing.assert_array_equal(rgb_from_image_msg(msg), RGB)


def test_padded_rows_from_a_driver_are_skipped() -> None:
    padded = np.zeros((6, 8 * 3 + 8), dtype=np.uint8)
    padded[:, : 8 * 3] = RGB.reshape(6, -1)
    msg = Image(height=6, width=8, encoding='rgb8', step=32)
    msg.data = padded.tobytes()
    np.testing.assert_array_equal(rgb_from_image_msg(over_the_wire(msg)), RGB)


def test_depth_message_in_millimetres() -> None:
    millimetres = np.array([[0, 750], [1200, 65535]], dtype=np.uint16)
    msg = over_the_wire(image_msg_from_array(millimetres, encoding='16UC1'))
    depth = depth_from_image_msg(msg)
    np.testing.assert_allclose(depth, [[np.nan, 0.75], [1.2, 65.535]], rtol=1e-6)


def test_big_endian_depth_flag_is_honoured() -> None:
    metres = np.array([[1.5, 2.0]], dtype='>f4')
    msg = Image(height=1, width=2, encoding='32FC1', step=8, is_bigendian=1)
    msg.data = metres.tobytes()
    np.testing.assert_array_equal(depth_from_image_msg(msg), [[1.5, 2.0]])


def test_size_limit_applies_to_messages() -> None:
    msg = image_msg_from_array(RGB, encoding='rgb8')
    with pytest.raises(ImageConversionError, match='exceeds max_image_bytes'):
        rgb_from_image_msg(msg, max_bytes=100)


@pytest.mark.parametrize('image_format', ['jpeg', 'png'])
def test_compressed_message_round_trip(image_format: str) -> None:
    flat = np.zeros((16, 16, 3), dtype=np.uint8)
    flat[:, :] = (30, 200, 40)
    msg = over_the_wire(compressed_msg_from_rgb(flat, image_format=image_format))
    assert isinstance(msg, CompressedImage)
    decoded = rgb_from_compressed_msg(msg)
    assert np.abs(decoded.astype(int) - flat.astype(int)).max() <= 3


@pytest.mark.parametrize(
    ('k', 'expected'),
    [
        (
            [500.0, 0, 320.0, 0, 510.0, 240.0, 0, 0, 1],
            CameraIntrinsics(500, 510, 320, 240, 640, 480),
        ),
        ([0.0] * 9, None),  # an uncalibrated driver publishes zeros
        ([float('nan'), 0, 320.0, 0, 500.0, 240.0, 0, 0, 1], None),
    ],
)
def test_intrinsics_from_camera_info(k: list[float], expected: CameraIntrinsics | None) -> None:
    info = CameraInfo(width=640, height=480, k=k)
    assert intrinsics_from_camera_info(info) == expected


# -- serialized messages, as the node's raw subscriptions receive them --------------------------


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'rgba8', 'mono8'])
@pytest.mark.parametrize('frame_id', ['', 'cam', 'camera_color_optical_frame'])
def test_serialized_image_reads_as_the_message_does(encoding: str, frame_id: str) -> None:
    image = RGB[:, :, 0] if encoding == 'mono8' else RGB
    header = header_with(Stamp(sec=-3, nanosec=999_999_999), frame_id)
    msg = image_msg_from_array(image, encoding=encoding, header=header)
    stamped = rgb_from_image_cdr(serialize_message(msg))
    np.testing.assert_array_equal(stamped.image, rgb_from_image_msg(over_the_wire(msg)))
    assert (stamped.stamp, stamped.frame_id) == (Stamp(sec=-3, nanosec=999_999_999), frame_id)


def test_serialized_image_with_padded_rows() -> None:
    msg = Image(header=header_with(Stamp(sec=1), 'f'), height=6, width=8, encoding='rgb8')
    msg.step = 8 * 3 + 5
    padded = np.zeros((6, msg.step), dtype=np.uint8)
    padded[:, : 8 * 3] = RGB.reshape(6, -1)
    msg.data = padded.tobytes()
    np.testing.assert_array_equal(rgb_from_image_cdr(serialize_message(msg)).image, RGB)


def test_serialized_depth_in_millimetres() -> None:
    depth_mm = np.array([[0, 1500], [2000, 65535]], dtype=np.uint16)
    msg = image_msg_from_array(depth_mm, encoding='16UC1', header=header_with(Stamp(sec=4), 'd'))
    stamped = depth_from_cdr(serialize_message(msg))
    np.testing.assert_array_equal(stamped.image, depth_from_image_msg(over_the_wire(msg)))
    assert stamped.stamp == Stamp(sec=4)


def test_serialized_compressed_image() -> None:
    msg = compressed_msg_from_rgb(RGB, image_format='png', header=header_with(Stamp(sec=2), 'c'))
    stamped = rgb_from_compressed_cdr(serialize_message(msg))
    np.testing.assert_array_equal(stamped.image, RGB)
    assert (stamped.stamp, stamped.frame_id) == (Stamp(sec=2), 'c')


def test_an_oversized_frame_is_refused_from_its_declared_size() -> None:
    # A header that declares 8000x8000 rgb8 (192 MB) over a few bytes of data: refused on the
    # declaration alone, before the data is looked at.
    msg = Image(height=8000, width=8000, encoding='rgb8', step=24000)
    msg.data = bytes(16)
    with pytest.raises(ImageConversionError, match='exceeds max_image_bytes'):
        rgb_from_image_cdr(serialize_message(msg), max_bytes=50 * 1024 * 1024)


@pytest.mark.parametrize('cut', [3, 10, 30, 60, 100])
def test_a_truncated_serialized_image_is_refused(cut: int) -> None:
    serialized = serialize_message(image_msg_from_array(RGB, header=header_with(Stamp(), 'f')))
    with pytest.raises(ImageConversionError):
        rgb_from_image_cdr(serialized[:cut])


def test_a_lying_data_length_is_refused() -> None:
    serialized = bytearray(serialize_message(image_msg_from_array(RGB)))
    # the uint32 length of `data` sits right before the pixels, at the end of the fields
    offset = len(serialized) - RGB.size - 4
    serialized[offset : offset + 4] = (RGB.size + 100).to_bytes(4, 'little')
    with pytest.raises(ImageConversionError, match='truncated'):
        rgb_from_image_cdr(bytes(serialized))


def test_another_encapsulation_is_read_through_rclpy() -> None:
    # XCDR2 little endian (0x0007): laid out like XCDR1 for Image, which has no 8-byte field
    serialized = b'\x00\x07' + serialize_message(image_msg_from_array(RGB))[2:]
    np.testing.assert_array_equal(rgb_from_image_cdr(serialized).image, RGB)
