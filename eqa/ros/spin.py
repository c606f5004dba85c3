"""Running a node until it is interrupted: the console scripts' common loop."""
from __future__ import annotations

from typing import Callable, Optional


def spin(node, num_threads: int, on_exit: Optional[Callable[[], None]] = None) -> None:
    """Spin `node` in a multi-threaded executor until Ctrl-C or an external shutdown; then on_exit() (if any),
    the executor and node are shut down, and rclpy's default context if still up."""
    import rclpy
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

    executor = MultiThreadedExecutor(num_threads=num_threads)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if on_exit is not None:
            on_exit()
        executor.shutdown()
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
