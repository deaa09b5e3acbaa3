"""`voice_command`: spoken operator commands in, command text out to the grounding node.

Audio comes from the microphone (default), a WAV file, or an audio topic
(std_msgs/UInt8MultiArray or Int16MultiArray chunks, format given by parameters). Voice activity
detection cuts utterances; pocketsphinx decodes each with a grammar generated from the parser's
vocabulary; a sentence that is complete, parses and is confident enough is published as
std_msgs/String on `command_topic` (the grounding node's `~/command`). Everything heard, sent or
not, is published as JSON on `~/heard` with the reason it was not sent, and a sentence for the
robot to say back on `~/prompt`: a read-back of a sent command, "did you say ...?" when unsure,
and the grounding node's answer to a sent command ("Counted 3 boxes.") when it arrives on the
planner topic.

Threading: the audio callback (topic subscription, PortAudio thread or WAV thread) only queues
the samples; one worker thread runs voice activity detection and the recogniser and publishes.
So decoding never blocks the executor, and a full queue drops the oldest audio (counted).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from std_msgs.msg import Int16MultiArray, String, UInt8MultiArray

from grounding_agent.core.errors import ConfigError, GroundingError
from grounding_agent.core.result import STANDING_REQUEST_ID, GroundingResult
from grounding_agent.ros.params import ParamSpec
from grounding_agent.ros.spin import spin_node
from grounding_agent.voice.audio import SAMPLE_FORMATS, AudioFormat, FloatAudio, decode_pcm
from grounding_agent.voice.errors import AudioFormatError, VoiceError
from grounding_agent.voice.feedback import AwaitedAnswers, spoken_answer
from grounding_agent.voice.grammar import default_objects
from grounding_agent.voice.listener import (
    CommandListener,
    HeardCommand,
    VoiceConfig,
    VoicePipeline,
)
from grounding_agent.voice.sources import MicrophoneSource, WavFileSource
from grounding_agent.voice.vad import VadConfig

__all__ = ['SOURCES', 'VOICE_PARAMETERS', 'VoiceCommandNode', 'main', 'voice_config_from_values']

SOURCES = ('microphone', 'topic', 'wav')
#: An answer arriving later than this after its command is not said back.
_ANSWER_WAIT_S = 60.0
_VAD = VadConfig()

VOICE_PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec('source', 'microphone', 'where audio comes from: microphone, topic or wav', True),
    ParamSpec(
        'command_topic',
        'grounding_node/command',
        'recognised commands are published here (std_msgs/String)',
        True,
    ),
    ParamSpec(
        'wake_word',
        '',
        "commands must start with this word, which is stripped; '' = every utterance is a command",
        True,
    ),
    ParamSpec('objects', list(default_objects()), 'object names operators may say', True),
    ParamSpec(
        'planner_topic',
        'planner/grounding',
        "the grounding node's answers (to say back the answers to spoken commands)",
        True,
    ),
    ParamSpec(
        'speak_answers',
        True,
        "put a sentence for the grounding node's answer to each sent command on ~/prompt",
        True,
    ),
    ParamSpec(
        'confidence_threshold',
        0.9,
        'below it a sentence is heard but not sent',
        min_value=0.0,
        max_value=1.0,
    ),
    ParamSpec(
        'ask_back_threshold',
        0.5,
        'from it up to confidence_threshold: ask "Did you say ...?", a following yes sends it',
        True,
        min_value=0.0,
        max_value=1.0,
    ),
    ParamSpec(
        'speed_views',
        '0.95, 1.05',
        'playback speeds at which the n-best sentences are re-ranked; the confidence is '
        "averaged over them ('' = off)",
        True,
    ),
    ParamSpec(
        'free_form_fallback',
        False,
        'decode again with the general en-us language model '
        'when the grammar finds no command (off: useless on synthetic voices)',
        True,
    ),
    ParamSpec('recognizer', 'pocketsphinx', 'pocketsphinx, whisper or faster_whisper', True),
    ParamSpec(
        'whisper_model_dir',
        '',
        'Whisper model: a save_pretrained directory or cached Hugging Face id (whisper), '
        'or a local CTranslate2 directory (faster_whisper)',
        True,
    ),
    ParamSpec('whisper_device', 'cpu', 'cpu or cuda[:N] (recognizer whisper)', True),
    ParamSpec('audio_topic', '~/audio', 'audio chunks (source topic)', True),
    ParamSpec(
        'audio_msg_type',
        'int16',
        'int16 (std_msgs/Int16MultiArray) or uint8 '
        '(std_msgs/UInt8MultiArray, raw bytes in sample_format)',
        True,
    ),
    ParamSpec('audio_qos', 'reliable', 'reliable or sensor_data (best effort)', True),
    ParamSpec(
        'sample_rate',
        16000,
        "sample rate of the audio topic (Hz); microphone: 0 = the device's default",
        True,
        0,
        384000,
    ),
    ParamSpec(
        'channels', 1, 'channels of the audio topic / microphone (interleaved)', True, 1, 32
    ),
    ParamSpec(
        'sample_format',
        's16',
        'sample format of uint8 audio chunks: ' + ', '.join(SAMPLE_FORMATS),
        True,
    ),
    ParamSpec('microphone_device', '', "microphone index or name part; '' = default input", True),
    ParamSpec('wav_file', '', 'WAV file to decode (source wav)', True),
    ParamSpec('wav_realtime', False, 'play the WAV file at real-time pace', True),
    ParamSpec(
        'vad.threshold_db',
        _VAD.threshold_db,
        'speech: this many dB above the noise floor',
        True,
        3.0,
        60.0,
    ),
    ParamSpec(
        'vad.hangover_ms', _VAD.hangover_ms, 'silence that ends an utterance', True, 50, 5000
    ),
    ParamSpec(
        'vad.min_utterance_ms', _VAD.min_utterance_ms, 'shorter speech is dropped', True, 0, 10000
    ),
    ParamSpec(
        'vad.max_utterance_ms',
        _VAD.max_utterance_ms,
        'longer utterances are refused',
        True,
        500,
        60000,
    ),
    ParamSpec(
        'queue_seconds',
        30.0,
        'audio buffered ahead of the recogniser before the oldest is dropped',
        True,
        1.0,
        600.0,
    ),
)


def voice_config_from_values(values: dict[str, Any]) -> VoiceConfig:
    """The listener's configuration from node parameter values (raises VoiceConfigError)."""
    return VoiceConfig.from_mapping(
        {
            'recognizer': values['recognizer'],
            'objects': tuple(values['objects']),
            'wake_word': values['wake_word'],
            'confidence_threshold': values['confidence_threshold'],
            'ask_back_threshold': values['ask_back_threshold'],
            'free_form': values['free_form_fallback'],
            'speed_views': values['speed_views'],
            'whisper_model_dir': values['whisper_model_dir'],
            'whisper_device': values['whisper_device'],
            'vad': {
                'threshold_db': values['vad.threshold_db'],
                'hangover_ms': values['vad.hangover_ms'],
                'min_utterance_ms': values['vad.min_utterance_ms'],
                'max_utterance_ms': values['vad.max_utterance_ms'],
            },
        }
    )


class VoiceCommandNode(Node):
    """Listens, recognises, and forwards confident, parseable commands (see module docs)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('voice_command', **kwargs)
        self._source: MicrophoneSource | WavFileSource | None = None
        self._worker: threading.Thread | None = None
        self.listener: CommandListener | None = None
        try:
            self._setup()
        except BaseException:
            self.destroy_node()
            raise

    def _setup(self) -> None:
        self.declare_parameters(
            '', [(spec.name, spec.default, spec.descriptor()) for spec in VOICE_PARAMETERS]
        )
        values = {spec.name: self.get_parameter(spec.name).value for spec in VOICE_PARAMETERS}
        self._values = values
        source = values['source']
        if source not in SOURCES:
            raise ConfigError(f'source must be one of {", ".join(SOURCES)}, got {source!r}')
        config = voice_config_from_values(values)
        listener = self.listener = CommandListener(config)
        self.heard_count = 0
        self.sent_count = 0
        self.dropped_chunks = 0
        self._queue: queue.Queue[tuple[FloatAudio, int] | None] = queue.Queue()
        self._queued_samples = 0
        self._queue_lock = threading.Lock()
        self._max_queued_s = float(values['queue_seconds'])
        self._pipeline: VoicePipeline | None = None
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self._command_pub = self.create_publisher(String, values['command_topic'], reliable)
        self._heard_pub = self.create_publisher(String, '~/heard', reliable)
        self._prompt_pub = self.create_publisher(String, '~/prompt', reliable)
        # Commands sent and not answered yet (monotonic seconds).
        self._awaiting = AwaitedAnswers(_ANSWER_WAIT_S)
        self._awaiting_lock = threading.Lock()
        if values['speak_answers']:
            self.create_subscription(
                String, values['planner_topic'], self._on_planner_result, reliable
            )
        self._topic_format: AudioFormat | None = None
        self._worker = threading.Thread(target=self._work, name='voice-recogniser', daemon=True)
        # The source first: when the microphone cannot be opened there is no thread to stop.
        self._start_source(source)
        self._worker.start()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        grammar = getattr(listener.recognizer, 'grammar', None)
        self.get_logger().info(
            f'listening ({source}, {listener.recognizer.name}'
            + (f', {len(grammar.words())} words' if grammar is not None else '')
            + (f", wake word '{config.wake_word}'" if config.wake_word else '')
            + f'); commands go to {self._command_pub.topic_name}'
        )

    # -- sources ---------------------------------------------------------------------------
    def _start_source(self, source: str) -> None:
        values = self._values
        if source == 'topic':
            self._topic_format = AudioFormat(
                int(values['sample_rate']),
                int(values['channels']),
                values['sample_format'] if values['audio_msg_type'] == 'uint8' else 's16',
            )
            msg_type = {'int16': Int16MultiArray, 'uint8': UInt8MultiArray}.get(
                values['audio_msg_type']
            )
            if msg_type is None:
                raise ConfigError(
                    f'audio_msg_type must be int16 or uint8, got {values["audio_msg_type"]!r}'
                )
            qos = (
                qos_profile_sensor_data
                if values['audio_qos'] == 'sensor_data'
                else QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)
            )
            self.create_subscription(msg_type, values['audio_topic'], self._on_audio_msg, qos)
        elif source == 'wav':
            if not values['wav_file']:
                raise ConfigError('source wav needs the wav_file parameter')
            self._source = WavFileSource(
                values['wav_file'],
                self.enqueue,
                realtime=bool(values['wav_realtime']),
                on_end=self._end_of_stream,
            )
            self._source.start()
        else:
            self._source = MicrophoneSource(
                self.enqueue,
                device=str(values['microphone_device']),
                sample_rate=int(values['sample_rate']),
                channels=int(values['channels']),
            )
            self._source.start()

    def _on_audio_msg(self, msg: Int16MultiArray | UInt8MultiArray) -> None:
        audio_format = self._topic_format
        if audio_format is None:
            return
        try:
            if isinstance(msg, Int16MultiArray):
                samples = np.frombuffer(msg.data, dtype=np.int16).astype(np.float32) / 32768.0
                if samples.size % audio_format.channels:
                    raise AudioFormatError(
                        f'{samples.size} samples are not whole '
                        f'{audio_format.channels}-channel frames'
                    )
                frames = samples.reshape(-1, audio_format.channels)
            else:
                frames = decode_pcm(memoryview(msg.data), audio_format)
        except AudioFormatError as exc:
            self.get_logger().warning(f'audio chunk dropped: {exc}', throttle_duration_sec=5.0)
            return
        self.enqueue(frames.mean(axis=1, dtype=np.float32), audio_format.sample_rate)

    def enqueue(self, samples: FloatAudio, sample_rate: int) -> None:
        """Hand audio to the recogniser thread (any thread may call this)."""
        with self._queue_lock:
            self._queued_samples += samples.size
            while self._queued_samples > self._max_queued_s * sample_rate:
                try:
                    old = self._queue.get_nowait()
                except queue.Empty:
                    break
                if old is not None:
                    self._queued_samples -= old[0].size
                    self.dropped_chunks += 1
            self._queue.put((samples, sample_rate))

    def _end_of_stream(self) -> None:
        self._queue.put(None)

    # -- recognition -----------------------------------------------------------------------
    def _work(self) -> None:
        listener = self.listener
        if listener is None:
            return
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                if item is None:
                    heard = self._pipeline.flush() if self._pipeline is not None else []
                    self.get_logger().info('end of the audio stream')
                else:
                    samples, rate = item
                    with self._queue_lock:
                        self._queued_samples -= samples.size
                    if self._pipeline is None or self._pipeline.sample_rate != rate:
                        self._pipeline = VoicePipeline(listener, rate)
                    heard = self._pipeline.feed(samples)
                for one in heard:
                    self._publish(one)
            except (GroundingError, ValueError) as exc:
                self.get_logger().error(f'recognition failed: {exc}', throttle_duration_sec=5.0)

    def _publish(self, heard: HeardCommand) -> None:
        self.heard_count += 1
        self._heard_pub.publish(String(data=heard.to_json()))
        if heard.prompt:
            self._prompt_pub.publish(String(data=heard.prompt))
        if heard.accepted:
            self.sent_count += 1
            with self._awaiting_lock:
                self._awaiting.sent(heard.command, time.monotonic())
            self._command_pub.publish(String(data=heard.command))
            self.get_logger().info(f"command: '{heard.command}' ({heard.confidence:.2f})")
        else:
            self.get_logger().info(f"heard '{heard.text}', not sent: {heard.reason}")

    def _on_planner_result(self, msg: String) -> None:
        """Say back the grounding node's answer to a command this node sent."""
        try:
            result = GroundingResult.from_json(msg.data)
        except ValueError:
            return  # not ours to judge: the planner topic carries the grounding node's JSON
        if result.request_id == STANDING_REQUEST_ID:
            return  # the tracked box on every frame is not an answer to say
        with self._awaiting_lock:
            awaited = self._awaiting.answered(result.command, time.monotonic())
        if not awaited:
            return
        sentence = spoken_answer(result)
        if sentence:
            self._prompt_pub.publish(String(data=sentence))

    def _on_set_parameters(self, parameters: list[Parameter[Any]]) -> SetParametersResult:
        for parameter in parameters:
            if parameter.name == 'confidence_threshold' and self.listener is not None:
                config = self.listener.config.model_copy(
                    update={'confidence_threshold': float(parameter.value)}
                )
                self.listener.config = config
        return SetParametersResult(successful=True)

    def destroy_node(self) -> None:
        if self._source is not None:
            try:
                self._source.stop()
            except VoiceError as exc:
                self.get_logger().warning(f'stopping the audio source: {exc}')
        if self._worker is not None and self._worker.is_alive():
            self._queue.put(_STOP)
            self._worker.join(timeout=10.0)
        if self.listener is not None:
            self.listener.close()
        super().destroy_node()


_STOP: Any = object()


def main(args: Sequence[str] | None = None) -> int:
    """Entry point of `ros2 run grounding_agent voice_command` and `grounding-agent voice`."""
    # Two threads: the audio subscription and parameter services; decoding has its own.
    return spin_node(
        'voice_command', VoiceCommandNode, args, threads=2, config_errors=(ConfigError, VoiceError)
    )


if __name__ == '__main__':
    raise SystemExit(main())
