"""`grounding-agent voice`: recognise spoken commands.

    grounding-agent voice --wav command.wav      decode a file without ROS; the last line printed
                                                 is the recognised command ('' when none)
    grounding-agent voice --listen               decode the microphone without ROS, one line per
                                                 command (Ctrl-C stops)
    grounding-agent voice --grammar              print the generated JSGF grammar
    grounding-agent voice --list-microphones     print the input devices PortAudio sees
    grounding-agent voice [--ros-args ...]       run the voice_command ROS node

What was heard and why it was not sent goes to stderr (or to stdout as JSON with --json).
"""

from __future__ import annotations

import argparse
import sys
import threading

from grounding_agent.commands.node import add_ros_args

__all__ = ['add_arguments', 'run']


def add_arguments(parser: argparse.ArgumentParser) -> None:
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument('--wav', metavar='FILE', help='decode this WAV file (no ROS)')
    mode.add_argument('--listen', action='store_true', help='decode the microphone (no ROS)')
    mode.add_argument('--grammar', action='store_true', help='print the JSGF grammar and exit')
    mode.add_argument(
        '--list-microphones', action='store_true', help='list audio input devices and exit'
    )
    parser.add_argument(
        '--objects',
        default='',
        help='comma-separated object names (default: shapes + household objects)',
    )
    parser.add_argument('--wake-word', default='', help="e.g. 'robot'; '' = none")
    parser.add_argument('--confidence-threshold', type=float, default=0.9)
    parser.add_argument(
        '--speed-views',
        default='0.95,1.05',
        help="playback speeds at which the n-best sentences are re-ranked ('' = off)",
    )
    parser.add_argument(
        '--free-form', action='store_true', help='fall back to the general en-us language model'
    )
    parser.add_argument(
        '--recognizer', choices=('pocketsphinx', 'faster_whisper'), default='pocketsphinx'
    )
    parser.add_argument(
        '--whisper-model-dir',
        default='',
        help='local CTranslate2 Whisper model (--recognizer faster_whisper)',
    )
    parser.add_argument('--device', default='', help='microphone index or name part (--listen)')
    parser.add_argument(
        '--json',
        action='store_true',
        help='print each utterance as a JSON line (text, confidence, accepted, '
        'reason) before the final command line',
    )
    add_ros_args(
        parser, help='everything after it goes to the ROS node (e.g. --ros-args -p source:=topic)'
    )


def _config(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from grounding_agent.voice.listener import VoiceConfig

    return VoiceConfig.from_mapping(
        {
            'objects': args.objects,
            'wake_word': args.wake_word,
            'confidence_threshold': args.confidence_threshold,
            'free_form': args.free_form,
            'speed_views': args.speed_views,
            'recognizer': args.recognizer,
            'whisper_model_dir': args.whisper_model_dir,
        }
    )


def run(args: argparse.Namespace) -> int:
    from grounding_agent.voice.errors import VoiceError

    try:
        if args.grammar:
            from grounding_agent.voice.listener import build_grammar

            grammar = build_grammar(_config(args))
            for phrase, reason in grammar.dropped.items():
                print(f'# left out: {phrase} ({reason})', file=sys.stderr)
            sys.stdout.write(grammar.to_jsgf())
            return 0
        if args.list_microphones:
            from grounding_agent.voice.sources import list_microphones

            print('\n'.join(list_microphones()) or 'no audio input devices')
            return 0
        if args.wav:
            return _decode_file(args)
        if args.listen:
            return _listen(args)
    except VoiceError as exc:
        print(f'grounding-agent voice: {exc}', file=sys.stderr)
        return 2
    from grounding_agent.ros.voice_command import main as node_main

    ros_args = ['--ros-args', *args.ros_args] if args.ros_args is not None else []
    return node_main(['voice_command', *ros_args])


def _report(heard, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    if as_json:
        print(heard.to_json(), flush=True)
    elif heard.accepted:
        print(f'heard: {heard.text} ({heard.confidence:.2f})', file=sys.stderr)
    else:
        print(f'heard: {heard.text!r}, not a command: {heard.reason}', file=sys.stderr)


def _decode_file(args: argparse.Namespace) -> int:
    from grounding_agent.voice.audio import read_wav
    from grounding_agent.voice.listener import CommandListener, VoicePipeline

    samples, rate = read_wav(args.wav)
    heard = VoicePipeline.hear_recording(CommandListener(_config(args)), samples, rate)
    commands = []
    for one in heard:
        _report(one, args.json)
        if one.accepted:
            commands.append(one.command)
    if not heard:
        print('no speech found in the file', file=sys.stderr)
    for command in commands[:-1]:
        print(command)
    # The recognised command is always the last line, empty when there is none.
    print(commands[-1] if commands else '')
    return 0 if commands else 1


def _listen(args: argparse.Namespace) -> int:
    from grounding_agent.voice.listener import CommandListener, VoicePipeline
    from grounding_agent.voice.sources import MicrophoneSource

    listener = CommandListener(_config(args))
    lock = threading.Lock()
    pipelines: dict[int, VoicePipeline] = {}

    def on_audio(samples, rate: int) -> None:  # type: ignore[no-untyped-def]
        with lock:
            pipeline = pipelines.setdefault(rate, VoicePipeline(listener, rate))
            for heard in pipeline.feed(samples):
                _report(heard, args.json)
                if heard.accepted:
                    print(heard.command, flush=True)

    microphone = MicrophoneSource(on_audio, device=args.device)
    microphone.start()
    print(
        f'listening on the microphone at {microphone.sample_rate} Hz; Ctrl-C stops',
        file=sys.stderr,
    )
    try:
        threading.Event().wait()
    finally:
        microphone.stop()
    return 0
