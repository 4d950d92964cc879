"""Upstream: github.com/e2b-dev/code-interpreter @ 7df1757bfd5baa037f909ce97c2dbe014da973c0
python/tests/async/test_async_statefulness.py

Adapted: fixture only (module-scoped LocalSandbox, see conftest.py); assertions unchanged.
"""

import pytest
from e2b_code_interpreter.code_interpreter_async import AsyncSandbox

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_stateful(async_sandbox: AsyncSandbox):
    await async_sandbox.run_code("async_test_stateful = 1")

    result = await async_sandbox.run_code("async_test_stateful+=1; async_test_stateful")
    assert result.text == "2"
