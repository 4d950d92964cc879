"""The seed's team: Planner, CodeAgent and AnalystAgent in a `Swarm`.

Differences from the seed, each for a reason:
- `model_client_stream=True` so the transcript streams token by token;
- the model client is built with `parallel_tool_calls=False`: a tool call and a
  handoff in one reply would otherwise run concurrently;
- each agent may have its own model client (a model file's per-agent entries,
  team/models_config.py): `build_team` takes one client or {agent: client};
- TERMINATE is matched only in the Planner's messages (`sources=["Planner"]`),
  never in the task or in tool output;
- an `ExternalTermination` is part of the condition so a graceful stop ends the
  run at the end of the current agent turn;
- the workbenches and handoffs are AutoGen's with its cancellation hang worked
  around (team/autogen_fixes.py); the CodeAgent's and the Analyst's tools are
  the registry's (team/tools/registry.py);
- one tool call per agent turn (AutoGen's default `max_tool_iterations=1`, as
  in the seed), so a graceful stop never waits for a chain of tool calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import Handoff
from autogen_agentchat.conditions import (
    ExternalTermination,
    MaxMessageTermination,
    TextMentionTermination,
    TimeoutTermination,
)
from autogen_agentchat.teams import Swarm
from autogen_core.models import ChatCompletionClient

from .api import EndReason
from .autogen_fixes import AsyncHandoff, CancelSafeWorkbench
from .config import DEFAULT_MAX_MESSAGES, DEFAULT_TIMEOUT
from .prompts import prompts_for
from .run_ends import Tagged
from .tools import SandboxTool, tool_names
from .tools.registry import ANALYST, CODE_AGENT

PLANNER = "Planner"
TERMINATE = "TERMINATE"


#: Who may hand the task to whom (the seed's topology).
HANDOFFS: dict[str, tuple[str, ...]] = {
    PLANNER: (CODE_AGENT, ANALYST),
    CODE_AGENT: (PLANNER,),
    ANALYST: (PLANNER,),
}


def handoffs(agent: str) -> list[Handoff | str]:
    return [AsyncHandoff(target=target) for target in HANDOFFS.get(agent, ())]


def offered_tool_names(agent: str) -> tuple[str, ...]:
    """Every tool name `agent`'s model is offered: its registered tools, then its handoffs
    (the run's guard words a tool call written as text with them)."""
    return tool_names(agent) + tuple(AsyncHandoff(target=t).name for t in HANDOFFS.get(agent, ()))


@dataclass
class Team:
    swarm: Swarm
    external: ExternalTermination
    timeout: TimeoutTermination
    fired: list[EndReason] = field(default_factory=list)  # which conditions ended the run (run_ends)


def build_team(
    model_client: ChatCompletionClient | Mapping[str, ChatCompletionClient],
    tools: dict[str, SandboxTool],
    analyst_tools: dict[str, SandboxTool] | None = None,
    *,
    lang: str = "zh",
    max_messages: int = DEFAULT_MAX_MESSAGES,
    timeout: float = DEFAULT_TIMEOUT,
) -> Team:
    """A fresh Swarm (AutoGen teams are not reliably reusable after a cancel).

    `model_client`: one client for all three agents, or one per agent name."""
    prompts = prompts_for(lang)

    def client_for(agent: str) -> ChatCompletionClient:
        if isinstance(model_client, Mapping):
            return model_client[agent]
        return model_client

    planner = AssistantAgent(
        name=PLANNER,
        model_client=client_for(PLANNER),
        handoffs=handoffs(PLANNER),
        system_message=prompts.planner,
        model_client_stream=True,
    )
    code_agent = AssistantAgent(
        name=CODE_AGENT,
        model_client=client_for(CODE_AGENT),
        handoffs=handoffs(CODE_AGENT),
        workbench=CancelSafeWorkbench([tools[name] for name in tool_names(CODE_AGENT)]),
        system_message=prompts.code_agent,
        model_client_stream=True,
        reflect_on_tool_use=False,
    )
    analyst = AssistantAgent(
        name=ANALYST,
        model_client=client_for(ANALYST),
        handoffs=handoffs(ANALYST),
        workbench=CancelSafeWorkbench([(analyst_tools or tools)[name] for name in tool_names(ANALYST)]),
        system_message=prompts.analyst,
        model_client_stream=True,
        reflect_on_tool_use=False,
    )
    external = ExternalTermination()
    timeout_condition = TimeoutTermination(timeout_seconds=timeout)
    fired: list[EndReason] = []
    termination = (
        Tagged(TextMentionTermination(TERMINATE, sources=[PLANNER]), EndReason.TERMINATE, fired)
        | Tagged(MaxMessageTermination(max_messages=max_messages), EndReason.MAX_MESSAGES, fired)
        | Tagged(timeout_condition, EndReason.TIMEOUT, fired)
        | Tagged(external, EndReason.STOPPED, fired)
    )
    swarm = Swarm([planner, code_agent, analyst], termination_condition=termination)
    return Team(swarm=swarm, external=external, timeout=timeout_condition, fired=fired)
