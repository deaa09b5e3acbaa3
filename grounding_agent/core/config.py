"""Resolver thresholds: configuration, not constants in code (see config/grounding_agent.yaml)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from grounding_agent.core.errors import ConfigError

__all__ = ['ResolverConfig']


class ResolverConfig(BaseModel):
    """How sure the resolver must be before it commits to an answer.

    Raising `accept_threshold` trades missed objects for fewer wrong groundings; on a robot a
    wrong grounding is worse than a `rejected` the operator can rephrase. `ambiguity_margin` is
    the score gap under which the two best candidates are reported as `ambiguous` instead of
    picking one. `verify_threshold` applies only to backends that can verify a box.
    """

    model_config = ConfigDict(frozen=True, extra='forbid')

    detection_threshold: float = Field(
        default=0.1, ge=0.0, le=1.0, description='drop detector boxes below this score'
    )
    attribute_threshold: float = Field(
        default=0.3, ge=0.0, le=1.0, description='min agreement of colour / size / shape'
    )
    relation_threshold: float = Field(
        default=0.5, ge=0.0, le=1.0, description='min graded score for a relation to hold'
    )
    # Calibrated for the default backend (color_shape) on a calibration split of the simulated
    # benchmark (seed 7), never on the reported one; recalibrate for a model backend with
    # `grounding-agent eval --resolver accept_threshold=...` (docs/resolver.md).
    accept_threshold: float = Field(
        default=0.15, ge=0.0, le=1.0, description='min combined score of the chosen target'
    )
    ambiguity_margin: float = Field(
        default=0.05, ge=0.0, le=1.0, description='best two closer than this -> ambiguous'
    )
    verify: bool = Field(default=True, description='confirm the winner when the backend can')
    verify_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    max_command_chars: int = Field(default=500, ge=16, le=100_000)
    viewpoint: Literal['camera', 'across', 'pose'] = Field(
        default='camera',
        description=(
            "where the operator stands, for 'left of me', 'closest to me': 'camera' (beside the "
            "camera, seeing what it sees), 'across' (facing the robot across the scene) or "
            "'pose' (at operator_x, operator_y, operator_z)"
        ),
    )
    # viewpoint 'pose': where the operator stands, in metres in the camera's optical frame.
    operator_x: float = Field(
        default=0.0, ge=-100.0, le=100.0, description="viewpoint 'pose': operator x (m, right)"
    )
    operator_y: float = Field(
        default=0.0, ge=-100.0, le=100.0, description="viewpoint 'pose': operator y (m, down)"
    )
    operator_z: float = Field(
        default=2.0, ge=-100.0, le=100.0, description="viewpoint 'pose': operator z (m, forward)"
    )

    @property
    def operator_position(self) -> tuple[float, float, float]:
        return (self.operator_x, self.operator_y, self.operator_z)

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> ResolverConfig:
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise ConfigError(f'invalid resolver configuration: {exc}') from exc
