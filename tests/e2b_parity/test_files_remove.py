"""Upstream: github.com/e2b-dev/E2B @ b8029973aa7da5f741f7bb1a9f833b38a0885438
packages/python-sdk/tests/async/sandbox_async/files/test_remove.py

Adapted: fixture only (module-scoped LocalSandbox, see conftest.py); assertions unchanged.
"""

import pytest
from e2b import AsyncSandbox

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_remove_file(async_sandbox: AsyncSandbox):
    filename = "test_remove.txt"
    content = "This file will be removed."

    await async_sandbox.files.write(filename, content)

    await async_sandbox.files.remove(filename)

    exists = await async_sandbox.files.exists(filename)
    assert not exists


async def test_remove_non_existing_file(async_sandbox: AsyncSandbox):
    filename = "non_existing_file.txt"
    await async_sandbox.files.remove(filename)
