"""Upstream: github.com/e2b-dev/E2B @ b8029973aa7da5f741f7bb1a9f833b38a0885438
packages/python-sdk/tests/async/sandbox_async/files/test_exists.py

Adapted: fixture only (module-scoped LocalSandbox, see conftest.py); assertions unchanged.
"""

import pytest
from e2b import AsyncSandbox

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_exists(async_sandbox: AsyncSandbox):
    filename = "test_exists.txt"

    await async_sandbox.files.write(filename, "test")
    assert await async_sandbox.files.exists(filename)
