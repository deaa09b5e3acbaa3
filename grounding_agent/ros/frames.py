"""The tf2 lookup behind the node's `target_frame`: the camera frame's pose at an image's stamp.

tf2_ros is imported only when a target frame is set, and only where it is installed (it is not
on the Python package index, so the machines this package is tested on have none: this lookup
is untested there; the transform math it feeds is in core/frames.py and tested apart).
"""

from __future__ import annotations

from typing import Any

from grounding_agent.core.frames import RigidTransform
from grounding_agent.core.types import Stamp

__all__ = ['TransformLookup', 'rigid_transform_from_msg']


def rigid_transform_from_msg(stamped: Any) -> RigidTransform:
    """A geometry_msgs/TransformStamped as a RigidTransform (child frame -> header frame)."""
    translation = stamped.transform.translation
    rotation = stamped.transform.rotation
    return RigidTransform(
        stamped.header.frame_id,
        stamped.child_frame_id,
        (translation.x, translation.y, translation.z),
        (rotation.x, rotation.y, rotation.z, rotation.w),
    )


class TransformLookup:
    """Looks up `target_frame` <- camera frame at an image's stamp with a tf2 buffer."""

    def __init__(self, node: Any, target_frame: str, *, timeout_s: float = 0.0) -> None:
        import tf2_ros  # noqa: F401  (raises ImportError where tf2_ros is not installed)
        from tf2_ros.buffer import Buffer
        from tf2_ros.transform_listener import TransformListener

        self.target_frame = target_frame
        self._timeout_s = timeout_s
        self._buffer = Buffer()
        self._listener = TransformListener(self._buffer, node)

    def lookup(self, source_frame: str, stamp: Stamp) -> RigidTransform | None:
        """The transform at `stamp`, or None when tf2 has none (yet) for it."""
        from rclpy.duration import Duration
        from rclpy.time import Time

        try:
            stamped = self._buffer.lookup_transform(
                self.target_frame,
                source_frame,
                Time(seconds=stamp.sec, nanoseconds=stamp.nanosec),
                timeout=Duration(seconds=self._timeout_s),
            )
        except Exception:  # tf2's LookupException, ExtrapolationException, ...
            return None
        return rigid_transform_from_msg(stamped)
