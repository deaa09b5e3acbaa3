"""The Fast DDS profile for camera streams (config/dds/fastdds_camera.xml) and its selection.

Fast DDS reads `FASTDDS_DEFAULT_PROFILES_FILE` when a process creates its first participant, so
the profile must be chosen before `rclpy.init`; the launch files and the demo do it for their
processes. A profile the user already selected is kept.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import MutableMapping
from pathlib import Path

__all__ = ['PROFILE_VARIABLE', 'camera_profile_path', 'use_camera_profile']

PROFILE_VARIABLE = 'FASTDDS_DEFAULT_PROFILES_FILE'
_RELATIVE = Path('config') / 'dds' / 'fastdds_camera.xml'


def camera_profile_path() -> Path | None:
    """The profile of this checkout, else the installed copy (share/grounding_agent); None when
    neither exists."""
    candidates = [Path(__file__).resolve().parents[2] / _RELATIVE]
    # no ament index: not a colcon install
    with contextlib.suppress(ImportError, LookupError, OSError):
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory('grounding_agent')) / _RELATIVE)
    candidates.append(Path(sys.prefix) / 'share' / 'grounding_agent' / _RELATIVE)
    return next((path for path in candidates if path.is_file()), None)


def use_camera_profile(environ: MutableMapping[str, str] | None = None) -> str:
    """Select the camera profile in `environ` (default: this process's environment) unless a
    profile is already selected; returns the profile in effect ('' = Fast DDS defaults)."""
    env = os.environ if environ is None else environ
    if not env.get(PROFILE_VARIABLE):
        path = camera_profile_path()
        if path is not None:
            env[PROFILE_VARIABLE] = str(path)
    return env.get(PROFILE_VARIABLE, '')
