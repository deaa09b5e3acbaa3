"""The Detector protocol (core/detector.py): the agent needs nothing of a model beyond it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scripted_backend import ScriptedBackend

from grounding_agent.backends.base import BackendConfig, create_backend
from grounding_agent.core.agent import GroundingAgent
from grounding_agent.core.detector import Detector
from grounding_agent.core.result import ResultStatus
from grounding_agent.core.types import Box, Detection, Frame

FRAME = Frame(image=np.zeros((120, 160, 3), dtype=np.uint8))


class PlainDetector:
    """Not a Backend: only the members the protocol names."""

    name = 'plain'
    supports_verify = False
    supports_expression = False

    def __init__(self) -> None:
        self.closed = False

    def detect(self, image: npt.NDArray[np.uint8], phrases: Sequence[str]) -> list[Detection]:
        return [Detection(Box(10, 10, 50, 50), phrase, 0.9) for phrase in phrases]

    def verify(self, image: npt.NDArray[np.uint8], box: Box, description: str) -> float | None:
        return None

    def ground_expression(
        self, image: npt.NDArray[np.uint8], description: str
    ) -> Detection | None:
        return None

    def close(self) -> None:
        self.closed = True


def test_the_agent_runs_on_any_detector() -> None:
    detector = PlainDetector()
    assert isinstance(detector, Detector)
    result = GroundingAgent(detector).handle_command('find the cube', FRAME, request_id='1')
    assert result.status is ResultStatus.GROUNDED
    assert result.backend == 'plain'


def test_every_backend_is_a_detector() -> None:
    backend = create_backend(BackendConfig(name='color_shape'))
    assert isinstance(backend, Detector)
    assert isinstance(ScriptedBackend({}), Detector)


def test_a_backend_without_a_name_of_its_own_is_named_by_its_config() -> None:
    class Unnamed(ScriptedBackend):
        name = ''

    assert Unnamed({}).name == 'scripted'
