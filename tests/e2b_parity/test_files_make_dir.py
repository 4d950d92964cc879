"""Upstream: github.com/e2b-dev/E2B @ b8029973aa7da5f741f7bb1a9f833b38a0885438
packages/python-sdk/tests/async/sandbox_async/files/test_make_dir.py

Adapted: fixture only (module-scoped LocalSandbox, see conftest.py); assertions unchanged.
"""

import uuid

import pytest
from e2b import AsyncSandbox

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_make_directory(async_sandbox: AsyncSandbox):
    dir_name = f"test_directory_{uuid.uuid4()}"

    await async_sandbox.files.make_dir(dir_name)
    exists = await async_sandbox.files.exists(dir_name)
    assert exists


async def test_make_directory_already_exists(async_sandbox: AsyncSandbox):
    dir_name = f"test_directory_{uuid.uuid4()}"

    created = await async_sandbox.files.make_dir(dir_name)
    assert created

    created = await async_sandbox.files.make_dir(dir_name)
    assert not created


async def test_make_nested_directory(async_sandbox: AsyncSandbox):
    nested_dir_name = f"test_directory_{uuid.uuid4()}/nested_directory"

    await async_sandbox.files.make_dir(nested_dir_name)
    exists = await async_sandbox.files.exists(nested_dir_name)
    assert exists
