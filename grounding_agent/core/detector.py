"""What the agent needs of a model: the `Detector` protocol.

The core defines it and never imports a model; `backends.base.Backend` implements it, and so
can any object with these members (a test double, a remote model). Calls come from one worker
thread at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from grounding_agent.core.types import Box, Detection

__all__ = ['Detector']


@runtime_checkable
class Detector(Protocol):
    """A model that finds phrases in images, and perhaps verifies or grounds descriptions.

    `name` is reported in every result. `supports_verify`: `verify` gives a real probability
    (generative VLMs); otherwise it returns None. `supports_expression`: `ground_expression`
    grounds a whole referring expression; otherwise it raises `BackendError`.
    """

    name: str
    supports_verify: bool
    supports_expression: bool

    def detect(self, image: npt.NDArray[np.uint8], phrases: Sequence[str]) -> list[Detection]:
        """Every box found for any of `phrases` in `image` (HxWx3 uint8 RGB).

        Each detection's `phrase` is one of `phrases`; boxes are in `image` pixels; scores 0..1.
        The detector keeps no reference to the image after returning.
        """
        ...

    def verify(self, image: npt.NDArray[np.uint8], box: Box, description: str) -> float | None:
        """Probability that `box` shows `description`; None when the detector cannot tell."""
        ...

    def ground_expression(
        self, image: npt.NDArray[np.uint8], description: str
    ) -> Detection | None:
        """The single box a whole referring expression denotes, or None when it is absent."""
        ...

    def close(self) -> None:
        """Free the model."""
        ...
