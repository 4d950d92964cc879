"""Upstream: github.com/e2b-dev/E2B @ b8029973aa7da5f741f7bb1a9f833b38a0885438
packages/python-sdk/tests/async/sandbox_async/commands/test_sandbox_killed_during_run.py

Adapted: fixture only; the test kills its sandbox, so `async_sandbox` is a fresh
LocalSandbox of its own here (as upstream's function-scoped fixture); assertions
unchanged.
"""

import pytest
import pytest_asyncio
from e2b import AsyncSandbox, TimeoutException

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module")
async def async_sandbox(fresh_async_sandbox):
    return fresh_async_sandbox


async def test_kill_sandbox_while_command_is_running(async_sandbox: AsyncSandbox):
    cmd = await async_sandbox.commands.run("sleep 60", background=True)

    await async_sandbox.kill()

    with pytest.raises(TimeoutException) as exc_info:
        await cmd.wait()

    # The health check confirms the sandbox is gone, so the error states it outright
    assert "sandbox was killed or reached its end of life" in str(exc_info.value)
