"""Session-wide test settings: offline model loading and a DDS domain of our own."""

from __future__ import annotations

import os
import random

# No model hub on test machines: every model is built from a config and loaded from tmp_path.
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
# A unique DDS domain per test session, so parallel runs on one host do not hear each other.
# Domains 0..101 are valid for Fast DDS on Linux with default ports; 0 is the usual default.
os.environ.setdefault('ROS_DOMAIN_ID', str(random.SystemRandom().randint(20, 100)))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('PYBULLET_EGL', '0')
