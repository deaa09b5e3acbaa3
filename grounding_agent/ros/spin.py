"""The `main()` of every node of this package: init, spin, and an orderly end on a signal.

rclpy's own signal handler would shut the context down first, so that nothing could be
published any more: commands waiting for the model could not be answered. Here rclpy installs
no handler; SIGINT and SIGTERM only ask the main thread to end the node, which it does while
the executor still spins (the node answers what it accepted), then stops the executor,
destroys the node and shuts rclpy down: exit code 0, no traceback. A callback that raises is
logged with its traceback and the node keeps spinning. Written for Humble and later
(try/finally rather than `with rclpy.init()`).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, TypeVar

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, ShutdownException
from rclpy.signals import SignalHandlerOptions

__all__ = ['spin_node']

_NodeT = TypeVar('_NodeT')
#: How often the main thread and the spin loop look whether the end was asked for.
_POLL_S = 0.2
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _EndRequest:
    """Set by the first SIGINT/SIGTERM (or when spinning ends on its own); a second signal
    during the orderly end forces the process out at once."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signals reach the main thread only; a caller elsewhere keeps its own
        for number in _SIGNALS:
            self._previous[number] = signal.signal(number, self._on_signal)

    def restore(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def _on_signal(self, number: int, frame: FrameType | None) -> None:
        if self.event.is_set():
            print(f'{signal.Signals(number).name} again: ending at once', file=sys.stderr)
            os._exit(1)
        self.event.set()


def _spin(executor: Any, end: _EndRequest, stop_spinning: threading.Event, log: Any) -> None:
    try:
        while not stop_spinning.is_set():
            try:
                executor.spin_once(timeout_sec=_POLL_S)
            except (ExternalShutdownException, ShutdownException):
                return  # rclpy was shut down from elsewhere: end like on a signal
            except Exception:  # one failing callback must not end the node
                log.error(f'a callback failed:\n{traceback.format_exc()}')
    finally:
        end.event.set()


def spin_node(
    name: str,
    make_node: Callable[[], _NodeT],
    args: Sequence[str] | None,
    *,
    threads: int,
    config_errors: tuple[type[BaseException], ...] = (),
    shut_down: Callable[[_NodeT], None] | None = None,
) -> int:
    """Create the node after `rclpy.init(args)` and spin it on `threads` executor threads.

    On SIGINT/SIGTERM (or an external rclpy shutdown) `shut_down(node)` runs first, with the
    executor still spinning; then the node is destroyed and rclpy shut down; exit code 0. An
    exception of `config_errors` (bad parameters) is printed with the node's `name` and gives
    exit code 2; any other exception while creating the node propagates after clean-up.
    """
    end = _EndRequest()
    end.install()
    rclpy.init(
        args=list(args) if args is not None else None,
        signal_handler_options=SignalHandlerOptions.NO,
    )
    node: Any = None
    executor: Any = None
    spinner: threading.Thread | None = None
    stop_spinning = threading.Event()
    try:
        node = make_node()
        executor = MultiThreadedExecutor(num_threads=threads)
        executor.add_node(node)
        spinner = threading.Thread(
            target=_spin,
            args=(executor, end, stop_spinning, node.get_logger()),
            name='executor',
            daemon=True,
        )
        spinner.start()
        # Short waits, not one long one, so the main thread keeps running the signal handlers.
        while not end.event.wait(_POLL_S):
            continue
        if shut_down is not None:
            shut_down(node)
    except config_errors as exc:
        print(f'{name}: {exc}', file=sys.stderr)
        return 2
    finally:
        stop_spinning.set()
        if spinner is not None:
            spinner.join(10.0)
        if executor is not None:
            executor.shutdown(timeout_sec=5.0)
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        end.restore()
    return 0
