"""The engine's contract (team/api.py) is what the app drives: the real controller and the
tests' fake controller both fulfil it, member by member (a method stays a method), so a
Pilot test on the fake says something about the app on the real engine."""

from __future__ import annotations

import inspect
from pathlib import Path

from team.api import TRANSITIONS, Controller, EndReason, RunState
from team.events import FinishReason, RunStateChanged, event_from_dict
from team.run import RunController
from tests.tui.fake_controller import FakeController

MEMBERS = [
    name for name in dir(Controller)
    if not name.startswith("_") and name not in ("register",)
] + list(Controller.__annotations__)


def test_both_controllers_fulfil_the_protocol_member_by_member(settings, tmp_path: Path) -> None:
    real = RunController(settings)
    fake = FakeController(settings, files_dir=tmp_path)
    for controller in (real, fake):
        assert isinstance(controller, Controller)
        for name in set(MEMBERS):
            declared = inspect.getattr_static(Controller, name, None)
            if inspect.isfunction(declared):  # a method in the protocol is a method here too
                assert callable(getattr(controller, name)), (type(controller).__name__, name)
                assert inspect.iscoroutinefunction(declared) == inspect.iscoroutinefunction(
                    getattr(controller, name)
                ), (type(controller).__name__, name, "async or not, as declared")
            else:
                assert hasattr(controller, name), (type(controller).__name__, name)
    assert real.state is RunState.IDLE and fake.state is RunState.IDLE


def test_states_and_reasons_read_back_from_a_record_as_plain_strings() -> None:
    event = RunStateChanged(state=RunState.FINISHED, reason=EndReason.TIMEOUT)
    back = event_from_dict(__import__("json").loads(event.to_json()))
    assert back == event and back.state == "finished" and back.reason == "timeout"
    assert FinishReason is str and {r.value for r in EndReason} >= {"terminate", "stopped", "budget"}
    # every state can be left, and FINISHED leads to a new turn
    assert all(TRANSITIONS[s] for s in RunState) and RunState.STARTING in TRANSITIONS[RunState.FINISHED]
