"""Simulated tabletop scenes with exact ground truth (PyBullet, DIRECT mode, CPU renderer).

`scene` holds the plain-data scene description and its seeded generator, `world` renders it,
`paths` scripts motion and `sequences` builds the moving sequences of the tracking evaluation.
`scene_file` reads hand-written scenes (YAML), `frame_truth` serialises and draws a rendered
frame's ground truth, and `truth` tells which objects a parsed description denotes. PyBullet
is imported only when a `SimWorld` is created.
"""

from __future__ import annotations

from grounding_agent.sim.paths import CircularPath, LinearPath, ObjectPath, WaypointPath
from grounding_agent.sim.scene import (
    COLOUR_RGBA,
    SHAPES,
    SIZES,
    TABLE_RGBA,
    CameraPose,
    SceneSpec,
    SimObject,
    generate_scene,
    look_at_pose,
)
from grounding_agent.sim.sequences import SEQUENCE_KINDS, make_tracking_sequence
from grounding_agent.sim.world import ObjectTruth, Render, SimWorld, render_scene

__all__ = [
    'COLOUR_RGBA',
    'SEQUENCE_KINDS',
    'SHAPES',
    'SIZES',
    'TABLE_RGBA',
    'CameraPose',
    'CircularPath',
    'LinearPath',
    'ObjectPath',
    'ObjectTruth',
    'Render',
    'SceneSpec',
    'SimObject',
    'SimWorld',
    'WaypointPath',
    'generate_scene',
    'look_at_pose',
    'make_tracking_sequence',
    'render_scene',
]
