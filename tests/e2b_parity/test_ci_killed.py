"""Upstream: github.com/e2b-dev/code-interpreter @ 7df1757bfd5baa037f909ce97c2dbe014da973c0
python/tests/async/test_async_killed.py

Adapted: fixture only; the test kills its sandbox, so `async_sandbox` is a fresh
LocalSandbox of its own here (as upstream's function-scoped fixture); assertions
unchanged.
"""

import asyncio

import pytest
import pytest_asyncio
from e2b import TimeoutException
from e2b_code_interpreter import AsyncSandbox

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module")
async def async_sandbox(fresh_async_sandbox):
    return fresh_async_sandbox


async def test_run_code_raises_when_sandbox_is_killed_during_execution(
    async_sandbox: AsyncSandbox,
):
    # Keep the execution firmly in-flight until the kill: the sleep is far
    # longer than the kill delay and the execution timeout is well beyond the
    # kill + disconnect-detection window, so the only thing that ends the
    # request is the sandbox being killed.
    execution = asyncio.create_task(
        async_sandbox.run_code("import time; time.sleep(300)", timeout=300)
    )

    await asyncio.sleep(2)
    await async_sandbox.kill()

    with pytest.raises(
        TimeoutException, match="sandbox was killed while the request was in progress"
    ):
        await execution
