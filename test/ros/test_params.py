"""The parameter table, the YAML defaults and the docs table stay one and the same."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from grounding_agent.backends.base import BackendConfig
from grounding_agent.core.config import ResolverConfig
from grounding_agent.core.errors import ConfigError
from grounding_agent.ros.params import (
    PARAMETERS,
    all_parameters,
    backend_config_from_values,
    camera_parameters,
    defaults,
    parameters_markdown,
    settings_from_values,
)

ROOT = Path(__file__).resolve().parents[2]
YAML_PATH = ROOT / 'config' / 'grounding_agent.yaml'
DOC_PATH = ROOT / 'docs' / 'ros_interface.md'


def flatten(tree: dict[str, Any], prefix: str = '') -> dict[str, Any]:
    """ROS parameter YAML nests dotted names; flatten them back."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f'{prefix}{key}'
        if isinstance(value, dict):
            flat.update(flatten(value, f'{name}.'))
        else:
            flat[name] = value
    return flat


def yaml_parameters() -> dict[str, Any]:
    document = yaml.safe_load(YAML_PATH.read_text(encoding='utf-8'))
    assert list(document) == ['/**']  # applies under any node name and namespace
    return flatten(document['/**']['ros__parameters'])


def test_yaml_keys_are_exactly_the_declared_parameters() -> None:
    values = yaml_parameters()
    assert set(values) == {spec.name for spec in all_parameters(values['cameras'])}


def test_yaml_values_are_the_declared_defaults_with_the_same_types() -> None:
    values = yaml_parameters()
    expected = defaults(values['cameras'])
    for name, value in values.items():
        # rclpy refuses an override of another type (0 for a double), so types must match too.
        assert (value, type(value)) == (expected[name], type(expected[name])), name


def test_backend_and_resolver_tables_cover_every_config_field() -> None:
    names = {spec.name for spec in PARAMETERS}
    assert {f'backend.{f}' for f in BackendConfig.model_fields} <= names
    assert {f'resolver.{f}' for f in ResolverConfig.model_fields} <= names
    assert backend_config_from_values(defaults()) == BackendConfig()
    assert settings_from_values(defaults()).resolver == ResolverConfig()


@pytest.mark.parametrize(
    ('text', 'options'),
    [('{}', {}), ('', {}), ('{"max_new_tokens": 64, "max_pixels": 1003520}', None)],
)
def test_backend_options_are_a_json_object(text: str, options: dict[str, int] | None) -> None:
    config = backend_config_from_values({**defaults(), 'backend.options': text})
    assert config.options == (json.loads(text) if options is None else options)


@pytest.mark.parametrize(
    ('text', 'message'),
    [('{max_new_tokens: 64}', 'not valid JSON'), ('[1, 2]', 'must be a JSON object')],
)
def test_bad_backend_options_are_config_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        backend_config_from_values({**defaults(), 'backend.options': text})


def test_names_are_unique_and_every_one_is_described() -> None:
    specs = all_parameters(['front', 'wrist'])
    assert len({spec.name for spec in specs}) == len(specs)
    assert all(spec.description for spec in specs)


def test_model_settings_need_a_restart_and_thresholds_do_not() -> None:
    by_name = {spec.name: spec for spec in all_parameters()}
    assert by_name['backend.name'].read_only
    assert by_name['camera.front.image_topic'].read_only
    assert not by_name['resolver.accept_threshold'].read_only
    assert not by_name['query'].read_only


def test_descriptors_carry_ranges_for_rclpy_to_enforce() -> None:
    pytest.importorskip('rcl_interfaces')
    by_name = {spec.name: spec for spec in all_parameters()}
    threshold = by_name['resolver.accept_threshold'].descriptor()
    assert (
        threshold.floating_point_range[0].from_value,
        threshold.floating_point_range[0].to_value,
    ) == (0.0, 1.0)
    queue = by_name['command_queue_size'].descriptor()
    assert queue.read_only
    assert (queue.integer_range[0].from_value, queue.integer_range[0].to_value) == (1, 1000)
    assert not by_name['query'].descriptor().floating_point_range


@pytest.mark.parametrize(
    ('changes', 'message'),
    [
        ({'cameras': []}, 'at least one camera'),
        ({'cameras': ['front', 'front']}, 'duplicates'),
        ({'cameras': ['front camera']}, 'must start with a letter'),
        ({'query_camera': 'wrist'}, "query_camera 'wrist' is not one of"),
        ({'image_qos': 'fast'}, 'image_qos must be one of'),
        ({'planner_topic': ''}, 'planner_topic must not be empty'),
        ({'resolver.accept_threshold': 1.5}, 'invalid resolver configuration'),
    ],
)
def test_invalid_settings_are_refused_with_a_reason(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_from_values({**defaults(), **changes})


def test_query_camera_defaults_to_the_first_camera() -> None:
    settings = settings_from_values({**defaults(), 'cameras': ['wrist', 'front']})
    assert settings.query_camera == 'wrist'
    assert settings.cameras == ('wrist', 'front')


def test_other_cameras_start_with_no_topics() -> None:
    assert all(spec.default == '' for spec in camera_parameters('wrist'))
    assert camera_parameters('front')[0].default == 'camera/image_raw'


def test_docs_list_the_generated_parameter_table() -> None:
    text = DOC_PATH.read_text(encoding='utf-8')
    match = re.search(r'<!-- BEGIN parameters -->\n(.*?)<!-- END parameters -->', text, re.S)
    assert match is not None, 'docs/ros_interface.md lacks the parameters markers'
    assert match.group(1) == parameters_markdown(), (
        'regenerate with: python -m grounding_agent.ros.params'
    )
