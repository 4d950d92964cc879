"""Upstream: github.com/e2b-dev/code-interpreter @ 7df1757bfd5baa037f909ce97c2dbe014da973c0
python/tests/async/test_async_execution_count.py

Adapted: fixture only; the count needs a fresh kernel, so `async_sandbox` is a
fresh LocalSandbox of its own here (as upstream's function-scoped fixture);
assertions unchanged.
"""

import pytest
import pytest_asyncio
from e2b_code_interpreter.code_interpreter_async import AsyncSandbox

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module")
async def async_sandbox(fresh_async_sandbox):
    return fresh_async_sandbox


async def test_execution_count(async_sandbox: AsyncSandbox):
    await async_sandbox.run_code("echo 'E2B is awesome!'")
    result = await async_sandbox.run_code("!pwd")
    assert result.execution_count == 2
