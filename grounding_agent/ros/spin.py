"""The `main()` of every node of this package: init, spin on a multi-threaded executor, clean up.

Written for Humble and later: try/finally rather than `with rclpy.init()`, and Ctrl-C or an
external shutdown end the node quietly with exit code 0.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

__all__ = ['spin_node']


def spin_node(
    name: str,
    make_node: Callable[[], Any],
    args: Sequence[str] | None,
    *,
    threads: int,
    config_errors: tuple[type[BaseException], ...] = (),
) -> int:
    """Create the node after `rclpy.init(args)` and spin it on `threads` executor threads.

    An exception of `config_errors` (bad parameters) is printed with the node's `name` and gives
    exit code 2; anything else propagates after the node is destroyed and rclpy shut down.
    """
    rclpy.init(args=list(args) if args is not None else None)
    node: Any = None
    try:
        node = make_node()
        executor = MultiThreadedExecutor(num_threads=threads)
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0  # Ctrl-C or a shutdown from outside: a normal end
    except config_errors as exc:
        print(f'{name}: {exc}', file=sys.stderr)
        return 2
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
