"""The `~/ground` service and `~/track` action of `grounding_node` (grounding_agent_interfaces).

`Ground` is a command with a typed answer: the request goes through the node's own command path
(so it is counted, queued, refused when busy and answered on the planner topic like any
command) and the service answers with the same result, typed. `Track` makes the command the
node's standing grounding (the `query` parameter), sends the tracked result of every processed
camera frame as feedback, and ends when the client cancels (the standing grounding is cleared),
when another track request or a `query` change replaces it, or when the node stops.

Callbacks are coroutines: a call waiting for its answer holds no executor thread.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rclpy.action.server import ActionServer, CancelResponse, GoalResponse, ServerGoalHandle
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.parameter import Parameter
from rclpy.serialization import serialize_message
from rclpy.task import Future
from std_msgs.msg import String

from grounding_agent.core.frames import RigidTransform
from grounding_agent.core.result import STANDING_REQUEST_ID, GroundingResult, error_result
from grounding_agent.ros.outputs import result_message
from grounding_agent_interfaces.action import Track
from grounding_agent_interfaces.srv import Ground

__all__ = ['TypedInterfaces']

#: Time a `Ground` call with timeout_s = 0 allows the model beyond `command_timeout_s`.
_MODEL_ALLOWANCE_S = 60.0
#: How often a running Track goal checks that the standing grounding is still its own.
_TRACK_CHECK_PERIOD_S = 0.1


@dataclass
class _TrackGoal:
    """The one Track goal following the standing grounding."""

    command: str
    camera: str
    handle: ServerGoalHandle[Any, Any, Any]
    wake: Future[Any]
    ended: tuple[str, str] | None = None  # (outcome, reason) once it must end
    last: Any = None  # the last GroundingResult message sent as feedback
    lock: threading.Lock = field(default_factory=threading.Lock)

    def end(self, outcome: str, reason: str) -> None:
        with self.lock:
            if self.ended is None:
                self.ended = (outcome, reason)
        if not self.wake.done():
            self.wake.set_result(True)


class TypedInterfaces:
    """Serves `~/ground` and `~/track` for a GroundingNode.

    The node calls `on_result` for every result it publishes (under its publish lock) and
    `stop_tracking` when it deactivates or shuts down.
    """

    def __init__(
        self,
        node: Any,
        *,
        submit_command: Callable[[bytes], None],
        to_message: Callable[..., Any] = result_message,
    ) -> None:
        self._node = node
        self._submit_command = submit_command
        self._to_message = to_message
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._pending: dict[str, Future[Any]] = {}
        self._goal: _TrackGoal | None = None
        self._group = group = ReentrantCallbackGroup()
        self._service = node.create_service(
            Ground, '~/ground', self._on_ground, callback_group=group
        )
        self._action = ActionServer(
            node,
            Track,
            '~/track',
            execute_callback=self._execute_track,
            goal_callback=self._on_goal,
            cancel_callback=self._on_cancel,
            callback_group=group,
        )
        self._check_timer = node.create_timer(
            _TRACK_CHECK_PERIOD_S, self._check_goal, callback_group=group
        )

    def destroy(self) -> None:
        self.stop_tracking('shutdown', 'the node was destroyed')
        self._node.destroy_timer(self._check_timer)
        self._action.destroy()
        self._node.destroy_service(self._service)

    # -- results from the node -----------------------------------------------------------------

    def _typed(self, result: GroundingResult, transform: RigidTransform | None) -> Any:
        if transform is None:
            return self._to_message(result)
        return self._to_message(
            result, target_frame=transform.target_frame, to_target_frame=transform.apply
        )

    def on_result(self, result: GroundingResult, transform: RigidTransform | None = None) -> None:
        """Hand a published result to the service call or Track goal waiting for it;
        `transform` maps its points into the node's target frame."""
        if result.request_id == STANDING_REQUEST_ID:
            goal = self._goal
            if goal is not None and goal.ended is None and goal.camera in ('', result.camera):
                message = self._typed(result, transform)
                goal.last = message
                goal.handle.publish_feedback(Track.Feedback(result=message))
            return
        with self._lock:
            waiting = self._pending.pop(result.request_id, None)
        if waiting is not None and not waiting.done():
            waiting.set_result(self._typed(result, transform))

    def stop_tracking(self, outcome: str, reason: str) -> None:
        """End the running Track goal (the node deactivates or shuts down)."""
        goal = self._goal
        if goal is not None:
            goal.end(outcome, reason)

    # -- Ground --------------------------------------------------------------------------------

    def _future(self) -> Future[Any]:
        return Future(executor=self._node.executor)

    def _timeout_s(self, requested: float) -> float:
        if requested > 0.0:
            return requested
        return float(self._node.get_parameter('command_timeout_s').value) + _MODEL_ALLOWANCE_S

    async def _on_ground(self, request: Any, response: Any) -> Any:
        request_id = f'ground/{next(self._ids)}'
        answer = self._future()
        with self._lock:
            self._pending[request_id] = answer
        payload = {'text': request.command, 'request_id': request_id}
        if request.camera:
            payload['camera'] = request.camera
        timeout_s = self._timeout_s(float(request.timeout_s))
        timer = self._node.create_timer(
            timeout_s, lambda: _settle(answer, None), callback_group=self._group
        )
        try:
            self._submit_command(serialize_message(String(data=json.dumps(payload))))
            result = await answer
        finally:
            self._node.destroy_timer(timer)
            with self._lock:
                self._pending.pop(request_id, None)
        if result is None:
            result = self._to_message(
                error_result(
                    f'no answer within {timeout_s:g} s; the planner topic still gets it '
                    f'under request id {request_id}',
                    request_id=request_id,
                    command=request.command,
                )
            )
        response.result = result
        return response

    # -- Track ---------------------------------------------------------------------------------

    def _on_goal(self, goal_request: Any) -> GoalResponse:
        if not goal_request.command.strip():
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _on_cancel(self, handle: ServerGoalHandle[Any, Any, Any]) -> CancelResponse:
        goal = self._goal
        if goal is not None and goal.handle is handle:
            goal.end(Track.Result.OUTCOME_CANCELED, 'cancelled by the client')
        return CancelResponse.ACCEPT

    def _check_goal(self) -> None:
        """A `query` change or a stop command ends the goal whose grounding it replaced."""
        goal = self._goal
        if goal is None or goal.ended is not None:
            return
        query = str(self._node.get_parameter('query').value).strip()
        if not query:
            goal.end(Track.Result.OUTCOME_STOPPED, 'the standing grounding was stopped')
        elif query != goal.command:
            goal.end(Track.Result.OUTCOME_REPLACED, f'replaced by {query!r}')

    async def _execute_track(self, handle: ServerGoalHandle[Any, Any, Any]) -> Any:
        request = handle.request
        command = request.command.strip()
        camera = request.camera  # '' = the node's query_camera, left as it is
        previous = self._goal
        if previous is not None:
            previous.end(Track.Result.OUTCOME_REPLACED, f'replaced by Track goal {command!r}')
        parameters = [Parameter('query', value=command)]
        if camera:
            parameters.append(Parameter('query_camera', value=camera))
        outcome = self._node.set_parameters_atomically(parameters)
        if not outcome.successful:
            handle.abort()
            reason = f'cannot track {command!r}: {outcome.reason}'
            return _track_result(Track.Result.OUTCOME_ERROR, reason, None, command)
        goal = _TrackGoal(command=command, camera=camera, handle=handle, wake=self._future())
        self._goal = goal
        try:
            await goal.wake
        finally:
            if self._goal is goal:
                self._goal = None
        outcome_name, reason = goal.ended or (Track.Result.OUTCOME_ERROR, 'ended')
        if outcome_name == Track.Result.OUTCOME_CANCELED:
            if str(self._node.get_parameter('query').value).strip() == command:
                self._node.set_parameters_atomically([Parameter('query', value='')])
            handle.canceled()
        else:
            handle.abort()
        return _track_result(outcome_name, reason, goal.last, command)


def _settle(future: Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _track_result(outcome: str, reason: str, last: Any, command: str) -> Any:
    if last is None:
        last = result_message(error_result(f'no frame was tracked: {reason}', command=command))
    return Track.Result(outcome=outcome, reason=reason, last_result=last)
