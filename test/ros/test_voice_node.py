"""The voice_command node on real DDS: audio in (topic or WAV file), command text out.

Commands are synthesised with espeak-ng, sent as audio chunks the way a microphone driver
would publish them, and what arrives on the grounding node's command topic is compared with
what was said. Needs rclpy and espeak-ng; skipped with the reason otherwise.
"""

from __future__ import annotations

import array
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = [
    pytest.mark.ros,
    pytest.mark.voice,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which('espeak-ng') is None, reason='espeak-ng is not installed'),
]

# Ten of the fixed spoken commands: verbs, colours, sizes, relations, ordinals, questions.
COMMANDS = (
    'pick up the red mug',
    'grab the small green cup',
    'where is the laptop',
    'pick up the red mug left of the laptop',
    'find the cup between the laptop and the plate',
    'track the second red cube',
    'how many red mugs are there',
    'is there a blue bottle',
    'is the ball under the chair',
    'what is on the table',
)


@pytest.fixture(scope='module')
def spoken(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[np.ndarray, int]]:
    from grounding_agent.voice.audio import read_wav
    from grounding_agent.voice.synthetic import synthesize

    directory = tmp_path_factory.mktemp('voice_node')
    return {
        text: read_wav(synthesize(text, directory / f'{i}.wav', voice='en-us', speed=160))
        for i, text in enumerate(COMMANDS)
    }


def _with_pauses(utterances: list[np.ndarray], rate: int) -> np.ndarray:
    pause = np.zeros(int(0.9 * rate), np.float32)
    return np.concatenate([pause, *[x for u in utterances for x in (u, pause)]])


def _voice_node(ros: Any, **parameters: Any) -> Any:
    from rclpy.parameter import Parameter

    from grounding_agent.ros.voice_command import VoiceCommandNode

    values = {'command_topic': f'{ros.prefix}/grounding_node/command', **parameters}
    node = VoiceCommandNode(
        context=ros.context,
        namespace=ros.prefix,
        parameter_overrides=[Parameter(name, value=value) for name, value in values.items()],
    )
    ros.nodes.append(node)
    ros.executor.add_node(node)
    return node


def _listen(ros: Any) -> tuple[Any, list[Any], list[Any]]:
    from std_msgs.msg import String

    peer = ros.peer()
    commands = peer.collect(String, f'{ros.prefix}/grounding_node/command')
    heard = peer.collect(String, f'{ros.prefix}/voice_command/heard')
    return peer, commands, heard


def test_commands_from_the_audio_topic_reach_the_command_topic(ros: Any, spoken: Any) -> None:
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from ros_harness import wait_for
    from std_msgs.msg import Int16MultiArray

    rate = next(iter(spoken.values()))[1]
    _voice_node(ros, source='topic', audio_topic=f'{ros.prefix}/audio', sample_rate=rate)
    peer, commands, heard = _listen(ros)
    audio_pub = peer.node.create_publisher(
        Int16MultiArray,
        f'{ros.prefix}/audio',
        QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE),
    )
    assert wait_for(lambda: audio_pub.get_subscription_count() > 0)
    assert wait_for(
        lambda: (
            len(peer.node.get_publishers_info_by_topic(f'{ros.prefix}/grounding_node/command')) > 0
        )
    )
    hiss = np.random.default_rng(5).normal(0, 0.2, rate).astype(np.float32)
    stream = _with_pauses([spoken[c][0] for c in COMMANDS] + [hiss], rate)
    pcm = np.clip(np.rint(stream * 32767), -32768, 32767).astype(np.int16)
    chunk = rate // 10
    for start in range(0, pcm.size, chunk):
        msg = Int16MultiArray()
        msg.data = array.array('h', pcm[start : start + chunk].tobytes())
        audio_pub.publish(msg)
        time.sleep(0.002)  # a microphone delivers far slower; keep the reader's queue short

    assert wait_for(lambda: len(heard) >= len(COMMANDS) + 1, timeout=120.0), [
        m.data for m in heard
    ]
    received = [m.data for m in commands]
    exact = [c for c in COMMANDS if c in received]
    assert len(exact) >= 9, received
    assert set(received) <= set(COMMANDS), received  # nothing wrong reached the robot
    reports = [json.loads(m.data) for m in heard]
    assert {'text', 'confidence', 'accepted', 'reason'} <= reports[0].keys()
    assert not reports[-1]['accepted']
    assert reports[-1]['reason']


def test_wav_file_to_command_topic(ros: Any, spoken: Any, tmp_path: Path) -> None:
    from ros_harness import wait_for
    from std_msgs.msg import String

    from grounding_agent.voice.audio import write_wav

    said = list(COMMANDS[:3])
    rate = spoken[said[0]][1]
    path = tmp_path / 'three_commands.wav'
    write_wav(path, _with_pauses([spoken[c][0] for c in said], rate), rate)
    peer, commands, heard = _listen(ros)
    prompts = peer.collect(String, f'{ros.prefix}/voice_command/prompt')
    # Subscribe first: the WAV source starts playing as soon as the node exists.
    assert wait_for(
        lambda: peer.node.count_subscribers(f'{ros.prefix}/grounding_node/command') > 0
    )
    assert wait_for(lambda: peer.node.count_subscribers(f'{ros.prefix}/voice_command/prompt') > 0)
    _voice_node(ros, source='wav', wav_file=str(path))
    assert wait_for(lambda: len(heard) >= 3, timeout=60.0)
    assert wait_for(lambda: len(commands) >= 3, timeout=10.0)
    assert [m.data for m in commands] == said
    # The read-back a text-to-speech node would say, one per sent command.
    assert wait_for(lambda: len(prompts) >= 3, timeout=10.0)
    assert [m.data for m in prompts] == [f'OK: {c}.' for c in said]


def test_uint8_stereo_chunks_at_another_rate(ros: Any, spoken: Any) -> None:
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from ros_harness import wait_for
    from std_msgs.msg import UInt8MultiArray

    from grounding_agent.voice.audio import resample

    text = COMMANDS[1]
    samples, rate = spoken[text]
    stereo_rate = 48000
    mono = resample(_with_pauses([samples], rate), rate, stereo_rate)
    frames = np.stack([mono, mono * 0.5], axis=1)
    pcm = np.clip(np.rint(frames * 32767), -32768, 32767).astype('<i2').tobytes()
    _voice_node(
        ros,
        source='topic',
        audio_topic=f'{ros.prefix}/audio8',
        audio_msg_type='uint8',
        sample_rate=stereo_rate,
        channels=2,
        sample_format='s16',
    )
    peer, commands, _ = _listen(ros)
    pub = peer.node.create_publisher(
        UInt8MultiArray,
        f'{ros.prefix}/audio8',
        QoSProfile(depth=500, reliability=ReliabilityPolicy.RELIABLE),
    )
    assert wait_for(lambda: pub.get_subscription_count() > 0)
    assert wait_for(lambda: peer.node.count_publishers(f'{ros.prefix}/grounding_node/command') > 0)
    step = 4 * 4800  # 100 ms of 48 kHz stereo s16
    for start in range(0, len(pcm), step):
        msg = UInt8MultiArray()
        msg.data = pcm[start : start + step]
        pub.publish(msg)
        time.sleep(0.002)
    assert wait_for(lambda: len(commands) >= 1, timeout=60.0)
    assert commands[0].data == text


def test_missing_microphone_is_a_clear_error(ros: Any) -> None:
    from grounding_agent.voice.errors import AudioSourceError

    with pytest.raises(AudioSourceError, match=r'microphone|PortAudio'):
        _voice_node(ros, source='microphone', microphone_device='no-such-microphone-xyz')


@pytest.mark.parametrize(
    ('parameters', 'message'),
    [
        ({'source': 'bluetooth'}, 'source must be one of'),
        ({'source': 'wav'}, 'needs the wav_file'),
        ({'source': 'topic', 'audio_msg_type': 'float64'}, 'audio_msg_type'),
        ({'source': 'topic', 'sample_format': 's12', 'audio_msg_type': 'uint8'}, 'sample format'),
        ({'source': 'topic', 'speed_views': '1.0, 1.05'}, 'speed views'),
    ],
)
def test_bad_parameters_are_config_errors(
    ros: Any, parameters: dict[str, Any], message: str
) -> None:
    from grounding_agent.core.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        _voice_node(ros, **parameters)


def test_parameter_defaults_are_the_listener_defaults_and_documented() -> None:
    from grounding_agent.ros.voice_command import VOICE_PARAMETERS, voice_config_from_values
    from grounding_agent.voice.grammar import default_objects
    from grounding_agent.voice.listener import VoiceConfig

    defaults = {spec.name: spec.default for spec in VOICE_PARAMETERS}
    assert voice_config_from_values(defaults) == VoiceConfig(objects=default_objects())
    docs = (Path(__file__).resolve().parents[2] / 'docs' / 'voice.md').read_text(encoding='utf-8')
    assert [spec.name for spec in VOICE_PARAMETERS if f'`{spec.name}`' not in docs] == []


def test_the_answer_to_a_spoken_command_is_said_back(ros: Any, tmp_path: Path) -> None:
    # The whole chain on DDS: speech -> voice node -> grounding node (scripted test backend,
    # which stands in for a model) -> planner topic -> a sentence on ~/prompt.
    from ros_harness import ScriptedTestBackend, scene_image, wait_for
    from std_msgs.msg import String

    from grounding_agent.core.parser import parse_command
    from grounding_agent.core.types import Box, Stamp
    from grounding_agent.voice.synthetic import synthesize

    phrase = parse_command('find the red cube').target.phrase
    ScriptedTestBackend.script = {phrase: [(Box(40, 80, 100, 140), 0.9)]}
    ros.grounding_node()
    peer = ros.peer()
    peer.wait_connected('front')
    prompts = peer.collect(String, f'{ros.prefix}/voice_command/prompt')
    path = synthesize('find the red cube', tmp_path / 'find.wav', voice='en-us', speed=160)
    assert wait_for(lambda: peer.node.count_subscribers(f'{ros.prefix}/voice_command/prompt') > 0)
    _voice_node(ros, source='wav', wav_file=str(path), planner_topic=f'{ros.prefix}/planner')

    frames = 0

    def answered() -> bool:
        nonlocal frames
        frames += 1
        peer.send_image(scene_image(), stamp=Stamp(sec=frames))
        time.sleep(0.05)  # a camera at about 20 Hz
        return len(prompts) >= 2

    assert wait_for(answered, timeout=60.0), [m.data for m in prompts]
    said = [m.data for m in prompts]
    assert said[0] == 'OK: find the red cube.'
    assert said[1].startswith('Found it: red cube'), said
    assert len(said) == 2  # the answer is said once; standing results are never said
