"""Upstream: github.com/e2b-dev/E2B @ b8029973aa7da5f741f7bb1a9f833b38a0885438
packages/python-sdk/tests/async/sandbox_async/commands/test_cmd_connect.py

Adapted: fixture only (module-scoped LocalSandbox, see conftest.py); assertions unchanged.
"""

import pytest
from e2b import AsyncSandbox, NotFoundException

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_connect_to_process(async_sandbox: AsyncSandbox):
    cmd = await async_sandbox.commands.run("sleep 10", background=True)
    pid = cmd.pid

    process_info = await async_sandbox.commands.connect(pid)
    assert process_info.pid == pid


async def test_connect_to_non_existing_process(async_sandbox: AsyncSandbox):
    non_existing_pid = 999999

    with pytest.raises(NotFoundException):
        await async_sandbox.commands.connect(non_existing_pid)
