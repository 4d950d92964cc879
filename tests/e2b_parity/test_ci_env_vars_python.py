"""Upstream: github.com/e2b-dev/code-interpreter @ 7df1757bfd5baa037f909ce97c2dbe014da973c0
python/tests/async/env_vars/test_python.py

Adapted: fixture only; assertions unchanged. Upstream's
`AsyncSandbox.create(template=template, envs=...)` is `LocalSandbox.create(envs=...)`
here (the sandbox-wide `envs=` is what is tested; templates are cloud only).
"""

import pytest
from e2b_code_interpreter.code_interpreter_async import AsyncSandbox

from team.sandbox.local import LocalSandbox

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_env_vars_on_sandbox():
    sandbox = await LocalSandbox.create(envs={"TEST_ENV_VAR": "supertest"})
    try:
        result = await sandbox.run_code("import os; os.getenv('TEST_ENV_VAR')", language="python")
        assert result.text is not None
        assert result.text.strip() == "supertest"
    finally:
        await sandbox.kill()


async def test_env_vars_per_execution(async_sandbox: AsyncSandbox):
    result = await async_sandbox.run_code(
        "import os; os.getenv('FOO')", envs={"FOO": "bar"}, language="python"
    )

    result_empty = await async_sandbox.run_code(
        "import os; os.getenv('FOO', 'default')", language="python"
    )

    assert result.text is not None
    assert result.text.strip() == "bar"
    assert result_empty.text is not None
    assert result_empty.text.strip() == "default"


async def test_env_vars_overwrite():
    sandbox = await LocalSandbox.create(envs={"TEST_ENV_VAR": "supertest"})
    try:
        result = await sandbox.run_code(
            "import os; os.getenv('TEST_ENV_VAR')",
            language="python",
            envs={"TEST_ENV_VAR": "overwrite"},
        )
        result_global_default = await sandbox.run_code(
            "import os; os.getenv('TEST_ENV_VAR')", language="python"
        )
        assert result.text is not None
        assert result.text.strip() == "overwrite"
        assert result_global_default.text is not None
        assert result_global_default.text.strip() == "supertest"
    finally:
        await sandbox.kill()
