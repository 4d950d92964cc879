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
from autogen_core.tools import BaseTool, FunctionTool

from .api import EndReason
from .prompts import prompts_for
from .run_ends import Tagged
from .tools import CancelSafeWorkbench, SandboxTool

PLANNER, CODE_AGENT, ANALYST = "Planner", "CodeAgent", "AnalystAgent"
TERMINATE = "TERMINATE"


class AsyncHandoff(Handoff):
    """AutoGen's handoff with an async tool function.

    The stock handoff tool is a sync function run in a thread-pool future that
    is linked to the cancellation token; a force stop cancels that future, the
    CancelledError escapes AutoGen's tool runner and the agent then waits
    forever for its end-of-tools marker (a leaked task per force stop). An async
    function is awaited directly, needs no thread, and cannot be cancelled
    half-way through returning a constant.
    """

    @property
    def handoff_tool(self) -> BaseTool:  # type: ignore[override]
        message = self.message

        async def _handoff_tool() -> str:
            return message

        return FunctionTool(_handoff_tool, name=self.name, description=self.description, strict=True)


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
    max_messages: int = 30,
    timeout: float = 600.0,
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
        handoffs=[AsyncHandoff(target=CODE_AGENT), AsyncHandoff(target=ANALYST)],
        system_message=prompts.planner,
        model_client_stream=True,
    )
    code_agent = AssistantAgent(
        name=CODE_AGENT,
        model_client=client_for(CODE_AGENT),
        handoffs=[AsyncHandoff(target=PLANNER)],
        workbench=CancelSafeWorkbench(
            [
                tools["run_code"],
                tools["install_package"],
                tools["list_files"],
                tools["read_file"],
                tools["write_file"],
                tools["generate_chart"],
            ]
        ),
        system_message=prompts.code_agent,
        model_client_stream=True,
        reflect_on_tool_use=False,
    )
    analyst = AssistantAgent(
        name=ANALYST,
        model_client=client_for(ANALYST),
        handoffs=[AsyncHandoff(target=PLANNER)],
        workbench=CancelSafeWorkbench([(analyst_tools or tools)["read_file"]]),
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
