"""Upstream: github.com/e2b-dev/E2B @ b8029973aa7da5f741f7bb1a9f833b38a0885438
packages/python-sdk/tests/async/sandbox_async/commands/test_cmd_kill.py

Adapted: fixture only (module-scoped LocalSandbox, see conftest.py); assertions unchanged.
"""

import pytest
from e2b import AsyncSandbox, CommandExitException

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_kill_process(async_sandbox: AsyncSandbox):
    cmd = await async_sandbox.commands.run("sleep 10", background=True)
    pid = cmd.pid

    await async_sandbox.commands.kill(pid)

    with pytest.raises(CommandExitException):
        await async_sandbox.commands.run(f"kill -0 {pid}")


async def test_kill_non_existing_process(async_sandbox: AsyncSandbox):
    non_existing_pid = 999999

    assert not await async_sandbox.commands.kill(non_existing_pid)
