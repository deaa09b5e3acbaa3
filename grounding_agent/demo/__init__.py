"""The scripted demo: a simulated camera, the grounding node and operator commands, scored.

`script` reads the demo's command list (its scene through `sim.scene_file`), `scoring`
judges each answer against the frame's ground truth (`sim.frame_truth`), `runner` drives the
ROS 2 nodes (`ros.demo_nodes`) through the script and `report` writes the table and the
Markdown report.
"""

from __future__ import annotations

__all__: list[str] = []
