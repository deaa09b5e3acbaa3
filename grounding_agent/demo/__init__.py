"""The scripted demo: a simulated camera, the grounding node and operator commands, scored.

`scene_file` reads hand-written scenes, `truth` serialises and draws a frame's ground truth,
`script` reads the demo's command list, `runner` runs it over ROS 2 and `report` writes the
table and the Markdown report.
"""

from __future__ import annotations

__all__: list[str] = []
