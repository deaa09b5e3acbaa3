"""ScriptedBackend: a test double for the Backend protocol that returns boxes scripted per phrase.

It stands in for a model so the agent can be tested against the Backend contract alone; it does
not look at the image. It records every call so tests can check what the agent asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from grounding_agent.backends.base import Backend, BackendConfig
from grounding_agent.core.types import Box, Detection

__all__ = ['ScriptedBackend']


class ScriptedBackend(Backend):
    """Returns `script[phrase]` for each asked phrase; optionally verifies with `verify_fn`.

    `failure` makes every detect() raise it (a backend crashing mid-run).
    """

    name = 'scripted'

    def __init__(
        self,
        script: Mapping[str, Sequence[Detection]],
        *,
        verify_fn: Callable[[Box, str], float | None] | None = None,
        failure: Exception | None = None,
    ) -> None:
        super().__init__(BackendConfig(name='scripted'))
        self.script = {phrase: list(boxes) for phrase, boxes in script.items()}
        self.verify_fn = verify_fn
        self.supports_verify = verify_fn is not None
        self.failure = failure
        self.detect_calls: list[list[str]] = []
        self.verify_calls: list[tuple[Box, str]] = []

    def detect(self, image: npt.NDArray[np.uint8], phrases: Sequence[str]) -> list[Detection]:
        self.detect_calls.append(list(phrases))
        if self.failure is not None:
            raise self.failure
        return [
            detection.with_updates(phrase=phrase)
            for phrase in phrases
            for detection in self.script.get(phrase, ())
        ]

    def verify(self, image: npt.NDArray[np.uint8], box: Box, description: str) -> float | None:
        self.verify_calls.append((box, description))
        return self.verify_fn(box, description) if self.verify_fn is not None else None
