"""Rigid transforms between coordinate frames: camera points into the robot's frames.

The node looks transforms up with tf2 (ros/frames.py); what it does with one lives here, free of
ROS, so it is tested without a tf2 installation. Quaternions are (x, y, z, w), as in
geometry_msgs; `apply` maps a point given in `source_frame` into `target_frame`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ['OPTICAL_IN_BODY', 'RigidTransform']

Vector3 = tuple[float, float, float]
Quaternion = tuple[float, float, float, float]


@dataclass(frozen=True)
class RigidTransform:
    """Pose of `source_frame` in `target_frame`: p_target = R p_source + t."""

    target_frame: str
    source_frame: str
    translation: Vector3 = (0.0, 0.0, 0.0)
    rotation: Quaternion = (0.0, 0.0, 0.0, 1.0)

    def __post_init__(self) -> None:
        norm = math.sqrt(sum(v * v for v in self.rotation))
        if not math.isfinite(norm) or norm < 1e-9:
            raise ValueError(f'rotation {self.rotation} is not a quaternion')
        if not all(math.isfinite(v) for v in self.translation):
            raise ValueError(f'translation {self.translation} is not finite')

    @classmethod
    def from_rpy(
        cls,
        target_frame: str,
        source_frame: str,
        translation: Sequence[float],
        rpy: Sequence[float],
    ) -> RigidTransform:
        """From roll, pitch, yaw in radians (fixed axes x, y, z: SDF's and URDF's convention)."""
        roll, pitch, yaw = (float(v) / 2.0 for v in rpy)
        cr, sr = math.cos(roll), math.sin(roll)
        cp, sp = math.cos(pitch), math.sin(pitch)
        cy, sy = math.cos(yaw), math.sin(yaw)
        rotation = (
            sr * cp * cy - cr * sp * sy,
            cr * sp * cy + sr * cp * sy,
            cr * cp * sy - sr * sp * cy,
            cr * cp * cy + sr * sp * sy,
        )
        tx, ty, tz = (float(v) for v in translation)
        return cls(target_frame, source_frame, (tx, ty, tz), rotation)

    def _unit(self) -> Quaternion:
        x, y, z, w = self.rotation
        norm = math.sqrt(x * x + y * y + z * z + w * w)
        return (x / norm, y / norm, z / norm, w / norm)

    def rotate(self, vector: Sequence[float]) -> Vector3:
        """`vector` turned by the rotation alone (v + 2w (q x v) + 2 q x (q x v))."""
        x, y, z, w = self._unit()
        vx, vy, vz = (float(v) for v in vector)
        cx, cy, cz = y * vz - z * vy, z * vx - x * vz, x * vy - y * vx
        dx, dy, dz = y * cz - z * cy, z * cx - x * cz, x * cy - y * cx
        return (vx + 2 * (w * cx + dx), vy + 2 * (w * cy + dy), vz + 2 * (w * cz + dz))

    def apply(self, point: Sequence[float]) -> Vector3:
        """`point` (metres, in source_frame) expressed in target_frame."""
        rx, ry, rz = self.rotate(point)
        tx, ty, tz = self.translation
        return (rx + tx, ry + ty, rz + tz)

    def then(self, outer: RigidTransform) -> RigidTransform:
        """This transform followed by `outer` (source_frame -> outer.target_frame)."""
        if outer.source_frame != self.target_frame:
            raise ValueError(
                f'cannot chain {self.source_frame}->{self.target_frame} with '
                f'{outer.source_frame}->{outer.target_frame}'
            )
        return RigidTransform(
            outer.target_frame,
            self.source_frame,
            outer.apply(self.translation),
            _product(outer._unit(), self._unit()),
        )

    def inverse(self) -> RigidTransform:
        x, y, z, w = self._unit()
        inverse = RigidTransform(self.source_frame, self.target_frame, rotation=(-x, -y, -z, w))
        mx, my, mz = inverse.rotate(self.translation)
        return RigidTransform(
            self.source_frame, self.target_frame, (-mx, -my, -mz), (-x, -y, -z, w)
        )


def _product(a: Quaternion, b: Quaternion) -> Quaternion:
    """Hamilton product a * b (b applied first)."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    )


#: The optical frame (z forward, x right, y down) in the camera body frame (x forward, y left,
#: z up), REP 103: roll -90 degrees, yaw -90 degrees.
OPTICAL_IN_BODY = RigidTransform.from_rpy(
    'camera_link', 'camera_optical_frame', (0.0, 0.0, 0.0), (-math.pi / 2, 0.0, -math.pi / 2)
)
