"""What the engine tests read off a run's event stream, written once: collect it, find its
RunFinished, and check what may come after that (its FINISHED state, notices about the
record, OutputsSaved last: the files are copied into the record after RunFinished)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from team import events as ev
from team.api import Controller


async def collect(
    controller: Controller, until: Callable[[ev.Event], Awaitable[None]] | None = None
) -> list[ev.Event]:
    """Every event of the current run (optionally calling `until(event)` on each)."""
    seen: list[ev.Event] = []
    async for event in controller.events():
        seen.append(event)
        if until is not None:
            await until(event)
    return seen


def finished(events: Sequence[ev.Event]) -> list[ev.RunFinished]:
    return [e for e in events if isinstance(e, ev.RunFinished)]


def after_finish(events: Sequence[ev.Event]) -> list[ev.Event]:
    """What came after the (one) RunFinished, checked to be only what may come then."""
    done = finished(events)
    assert len(done) == 1, done
    rest = list(events[list(events).index(done[0]) + 1 :])
    assert isinstance(rest[-1], ev.OutputsSaved)
    assert isinstance(rest[0], ev.RunStateChanged) and rest[0].state == "finished" and rest[0].reason == done[0].reason
    assert all(isinstance(e, ev.Notice) for e in rest[1:-1]), [e.type for e in rest]
    return rest


def the_finish(events: Sequence[ev.Event]) -> ev.RunFinished:
    """The run's one RunFinished, after which came only what may come then."""
    after_finish(events)
    return finished(events)[0]


def scripted(responder, pace: float = 0.0):  # noqa: ANN001, ANN201  (a Turn -> Reply callable)
    """A model factory for RunController: AutoGen's protocol, replies from `responder`."""
    from team.scripted import ScriptedChatCompletionClient

    return lambda: ScriptedChatCompletionClient(responder, pace=pace)
