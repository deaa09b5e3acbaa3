"""Scripted object motion for simulated sequences: straight lines, circles and timed waypoints.

A path is a pure function of time (seconds) to a world position (metres) and a yaw (radians), so
a sequence renders the same at any frame rate and in any order. `SimWorld.set_time` places each
moving object where its path says, kinematically: no physics runs.
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from grounding_agent.sim.errors import SimError

__all__ = ['CircularPath', 'LinearPath', 'ObjectPath', 'WaypointPath']

Vec3 = tuple[float, float, float]


class ObjectPath(ABC):
    """Where a moving object is at time t (seconds since the start of the sequence)."""

    @abstractmethod
    def position_at(self, t: float) -> Vec3:
        """World position of the object's centre, metres."""

    def yaw_at(self, t: float) -> float | None:
        """Yaw in radians, or None to keep the object's own yaw."""
        return None

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description (kind + parameters) for ground-truth files."""


@dataclass(frozen=True)
class LinearPath(ObjectPath):
    """Constant velocity from `start`, between `t_start` and `t_end` (still before and after)."""

    start: Vec3
    velocity: Vec3
    t_start: float = 0.0
    t_end: float = math.inf

    def position_at(self, t: float) -> Vec3:
        dt = min(max(t, self.t_start), self.t_end) - self.t_start
        return (
            self.start[0] + self.velocity[0] * dt,
            self.start[1] + self.velocity[1] * dt,
            self.start[2] + self.velocity[2] * dt,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            'kind': 'linear',
            'start': list(self.start),
            'velocity': list(self.velocity),
            't_start': self.t_start,
            't_end': None if math.isinf(self.t_end) else self.t_end,
        }


@dataclass(frozen=True)
class CircularPath(ObjectPath):
    """A horizontal circle around `centre` (its z is the object's height), counter-clockwise
    seen from above for a positive `period_s`; `phase` is the angle at t = 0."""

    centre: Vec3
    radius: float
    period_s: float
    phase: float = 0.0

    def __post_init__(self) -> None:
        if self.period_s == 0 or not math.isfinite(self.period_s):
            raise SimError(f'period_s must be finite and non-zero, got {self.period_s}')

    def _angle(self, t: float) -> float:
        return self.phase + 2.0 * math.pi * t / self.period_s

    def position_at(self, t: float) -> Vec3:
        angle = self._angle(t)
        return (
            self.centre[0] + self.radius * math.cos(angle),
            self.centre[1] + self.radius * math.sin(angle),
            self.centre[2],
        )

    def yaw_at(self, t: float) -> float | None:
        # Objects turn with the circle, as a carried object would.
        return self._angle(t)

    def to_dict(self) -> dict[str, Any]:
        return {
            'kind': 'circular',
            'centre': list(self.centre),
            'radius': self.radius,
            'period_s': self.period_s,
            'phase': self.phase,
        }


@dataclass(frozen=True)
class WaypointPath(ObjectPath):
    """Piecewise-linear motion through (t, x, y, z) waypoints; held at the ends.

    Times must increase strictly. A repeated position with a later time is a pause.
    """

    waypoints: tuple[tuple[float, float, float, float], ...]

    def __post_init__(self) -> None:
        if not self.waypoints:
            raise SimError('a waypoint path needs at least one waypoint')
        times = [w[0] for w in self.waypoints]
        if any(b <= a for a, b in itertools.pairwise(times)):
            raise SimError(f'waypoint times must increase strictly, got {times}')

    def position_at(self, t: float) -> Vec3:
        points = self.waypoints
        if t <= points[0][0]:
            return points[0][1:]
        for (t0, *p0), (t1, *p1) in itertools.pairwise(points):
            if t <= t1:
                a = (t - t0) / (t1 - t0)
                return (
                    p0[0] + a * (p1[0] - p0[0]),
                    p0[1] + a * (p1[1] - p0[1]),
                    p0[2] + a * (p1[2] - p0[2]),
                )
        return points[-1][1:]

    def to_dict(self) -> dict[str, Any]:
        return {'kind': 'waypoints', 'waypoints': [list(w) for w in self.waypoints]}
