"""Upstream: github.com/e2b-dev/E2B @ b8029973aa7da5f741f7bb1a9f833b38a0885438
packages/python-sdk/tests/async/sandbox_async/commands/test_cmd_list.py

Adapted: fixture only (module-scoped LocalSandbox, see conftest.py); assertions unchanged.
"""

import pytest
from e2b import AsyncSandbox

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_kill_process(async_sandbox: AsyncSandbox):
    c1 = await async_sandbox.commands.run("sleep 10", background=True)
    c2 = await async_sandbox.commands.run("sleep 10", background=True)

    processes = await async_sandbox.commands.list()

    assert len(processes) >= 2
    pids = [p.pid for p in processes]
    assert c1.pid in pids
    assert c2.pid in pids
