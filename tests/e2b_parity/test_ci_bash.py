"""Upstream: github.com/e2b-dev/code-interpreter @ 7df1757bfd5baa037f909ce97c2dbe014da973c0
python/tests/async/test_async_bash.py

Adapted: fixture only (module-scoped LocalSandbox, see conftest.py); assertions unchanged.
"""

import pytest
from e2b_code_interpreter.code_interpreter_async import AsyncSandbox

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_bash(async_sandbox: AsyncSandbox):
    result = await async_sandbox.run_code("!pwd")
    assert "".join(result.logs.stdout).strip() == "/home/user"
