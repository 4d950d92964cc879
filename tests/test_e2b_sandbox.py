"""E2BSandbox against the local stand-in (tests/e2b_standin.py); never the internet.

Every test gets its own stand-in on an ephemeral 127.0.0.1 port; the SDK is pointed
at it with `api_url` and `sandbox_url`, and the autouse fixture below removes the
E2B_* variables and points E2B_API_URL / E2B_SANDBOX_URL at a refusing port, so a
call that forgot its kwargs fails fast instead of reaching api.e2b.app.
"""

from __future__ import annotations

import os

# Fail fast on refused connections (the SDK reads this once, at import; only a speed-up).
os.environ.setdefault("E2B_CONNECTION_RETRIES", "0")

import asyncio  # noqa: E402
import socket  # noqa: E402
from collections.abc import AsyncIterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from team.sandbox.base import KernelRestarted, Sandbox, SandboxError  # noqa: E402
from team.sandbox.e2b import (  # noqa: E402
    AUTH_MESSAGE,
    RATE_LIMIT_MESSAGE,
    E2BSandbox,
    check_e2b_status,
)
from tests.e2b_standin import E2BStandIn  # noqa: E402

pytestmark = pytest.mark.timeout(30)

SLOW_CELL = "import time\nfor _ in range(100):\n    time.sleep(0.03)"


def _refusing_url() -> str:
    """A 127.0.0.1 URL nothing listens on (bound then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("E2B_API_KEY", "E2B_DOMAIN", "E2B_DEBUG", "E2B_ACCESS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    dead = _refusing_url()
    monkeypatch.setenv("E2B_API_URL", dead)
    monkeypatch.setenv("E2B_SANDBOX_URL", dead)


@pytest.fixture
async def standin(tmp_path: Path) -> AsyncIterator[E2BStandIn]:
    async with E2BStandIn(tmp_path) as server:
        yield server


@pytest.fixture
async def sandbox(standin: E2BStandIn) -> AsyncIterator[E2BSandbox]:
    sb = await E2BSandbox.create(**standin.sdk_kwargs())
    yield sb
    await sb.kill()


async def test_create_and_protocol(sandbox: E2BSandbox, standin: E2BStandIn) -> None:
    assert isinstance(sandbox, Sandbox)
    assert (sandbox.kind, sandbox.isolation) == ("e2b", "e2b")
    assert sandbox.sandbox_id == standin.created[-1]
    assert await sandbox.is_running()


async def test_state_and_stdout(sandbox: E2BSandbox) -> None:
    first = await sandbox.run_code("x = 1")
    assert first.error is None
    seen: list[str] = []
    execution = await sandbox.run_code("print(x + 1)", on_stdout=lambda m: seen.append(m.line))
    assert seen == ["2\n"]
    assert execution.logs.stdout == ["2\n"]
    assert execution.error is None


async def test_async_callbacks_and_result(sandbox: E2BSandbox) -> None:
    seen: list[str] = []

    async def on_stdout(message: object) -> None:
        seen.append(message.line)  # type: ignore[attr-defined]

    execution = await sandbox.run_code("print('a')\n40 + 2", on_stdout=on_stdout)
    assert seen == ["a\n"]
    assert execution.text == "42"


async def test_exception_is_in_execution(sandbox: E2BSandbox) -> None:
    errors: list[object] = []
    execution = await sandbox.run_code("1 / 0", on_error=errors.append)
    assert execution.error is not None
    assert execution.error.name == "ZeroDivisionError"
    assert "division by zero" in execution.error.value
    assert errors == [execution.error]


async def test_files_roundtrip(sandbox: E2BSandbox) -> None:
    files = sandbox.files
    await files.write("/home/user/data/a.csv", "x,y\n1,2\n")
    assert await files.read("/home/user/data/a.csv") == "x,y\n1,2\n"
    assert bytes(await files.read("data/a.csv", format="bytes")) == b"x,y\n1,2\n"
    names = [entry.name for entry in await files.list("/home/user/data")]
    assert names == ["a.csv"]
    assert await files.exists("/home/user/data/a.csv")
    assert await files.make_dir("/home/user/out") is True
    assert await files.make_dir("/home/user/out") is False
    await files.remove("/home/user/data/a.csv")
    assert not await files.exists("/home/user/data/a.csv")


async def test_read_missing_file_passes_sdk_error(sandbox: E2BSandbox) -> None:
    from e2b import FileNotFoundException

    with pytest.raises(FileNotFoundException):
        await sandbox.files.read("/home/user/nope.txt")


async def test_install_refuses_injection_without_running(
    sandbox: E2BSandbox, standin: E2BStandIn
) -> None:
    ok, output = await sandbox.install_package("numpy; rm -rf /")
    assert ok is False
    assert "refused" in output
    assert standin.commands == []


async def test_install_runs_pip_with_long_timeout(sandbox: E2BSandbox, standin: E2BStandIn) -> None:
    ok, output = await sandbox.install_package("pandas[excel]==2.2.3")
    assert ok is True
    assert "Successfully installed" in output
    [command] = standin.commands
    assert command.cmd == "pip install 'pandas[excel]==2.2.3'"
    assert command.timeout_ms == 600_000


async def test_install_failure_returns_output(sandbox: E2BSandbox, standin: E2BStandIn) -> None:
    standin.command_handler = lambda cmd: (
        1,
        "",
        "ERROR: No matching distribution found for nosuchpkg\n",
    )
    ok, output = await sandbox.install_package("nosuchpkg")
    assert ok is False
    assert "No matching distribution" in output


async def test_expired_sandbox_recreated_once(sandbox: E2BSandbox, standin: E2BStandIn) -> None:
    await sandbox.run_code("x = 1")
    old_id = sandbox.sandbox_id
    standin.expire()
    errors: list[object] = []
    execution = await sandbox.run_code("print('hi')", on_error=errors.append)
    assert sandbox.sandbox_id != old_id
    assert len(standin.created) == 2
    assert execution.logs.stdout == ["hi\n"]
    assert execution.error is not None
    assert execution.error.name == "SandboxRestarted"
    assert "recreated" in execution.error.value and "lost" in execution.error.value
    assert errors == [execution.error]
    # the new sandbox really has a fresh kernel
    after = await sandbox.run_code("x")
    assert after.error is not None and after.error.name == "NameError"


async def test_expired_sandbox_recreate_reports_cell_error(
    sandbox: E2BSandbox, standin: E2BStandIn
) -> None:
    await sandbox.run_code("x = 1")
    standin.expire()
    execution = await sandbox.run_code("x + 1")
    assert execution.error is not None
    assert execution.error.name == "SandboxRestarted"
    assert "NameError" in execution.error.value


async def test_expired_sandbox_on_files_raises_kernel_restarted(
    sandbox: E2BSandbox, standin: E2BStandIn
) -> None:
    standin.expire()
    with pytest.raises(KernelRestarted, match="recreated"):
        await sandbox.files.read("/home/user/a.txt")
    assert len(standin.created) == 2
    await sandbox.files.write("/home/user/a.txt", "ok")
    assert await sandbox.files.read("/home/user/a.txt") == "ok"


async def test_recreated_only_once_per_call(
    sandbox: E2BSandbox, standin: E2BStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    standin.expire()
    original = E2BSandbox._recreate

    async def recreate_into_dead(self: E2BSandbox, generation: int) -> None:
        await original(self, generation)
        standin.expire()  # the new one is dead at once too

    monkeypatch.setattr(E2BSandbox, "_recreate", recreate_into_dead)
    with pytest.raises(SandboxError, match="recreated"):
        await sandbox.run_code("1")
    assert len(standin.created) == 2


async def test_interrupt_stops_cell_and_keeps_state(
    sandbox: E2BSandbox, standin: E2BStandIn
) -> None:
    await sandbox.run_code("y = 41")
    started = asyncio.Event()
    code = "import time\nfor i in range(400):\n    print(i)\n    time.sleep(0.05)"
    run = asyncio.create_task(sandbox.run_code(code, on_stdout=lambda m: started.set()))
    await asyncio.wait_for(started.wait(), 5)
    await sandbox.interrupt()
    execution = await asyncio.wait_for(run, 5)
    assert execution.error is not None and execution.error.name == "KeyboardInterrupt"
    assert execution.logs.stdout  # what ran before the interrupt is kept
    after = await sandbox.run_code("print(y + 1)")
    assert after.logs.stdout == ["42\n"]
    assert standin.interrupts == 1


async def test_interrupt_without_running_cell_is_noop(sandbox: E2BSandbox) -> None:
    await sandbox.interrupt()
    assert (await sandbox.run_code("print(1)")).logs.stdout == ["1\n"]


async def test_caller_cancel_propagates(sandbox: E2BSandbox) -> None:
    run = asyncio.create_task(sandbox.run_code(SLOW_CELL))
    await asyncio.sleep(0.2)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run


async def test_execution_timeout_raises_like_the_sdk(
    sandbox: E2BSandbox, standin: E2BStandIn
) -> None:
    from e2b import TimeoutException

    await sandbox.run_code("z = 7")
    with pytest.raises(TimeoutException, match="Execution timed out"):
        await sandbox.run_code(SLOW_CELL, timeout=0.5)
    # the server interrupted the cell on disconnect; the kernel state survives
    assert (await sandbox.run_code("print(z)")).logs.stdout == ["7\n"]
    assert standin.interrupts == 1


async def test_kill_during_cell_raises_killed(sandbox: E2BSandbox) -> None:
    from e2b import TimeoutException

    run = asyncio.create_task(sandbox.run_code(SLOW_CELL))
    await asyncio.sleep(0.2)
    await sandbox.kill()
    with pytest.raises(TimeoutException, match="killed"):
        await asyncio.wait_for(run, 5)


async def test_auth_error_one_line(standin: E2BStandIn) -> None:
    with pytest.raises(SandboxError) as info:
        await E2BSandbox.create(**standin.sdk_kwargs(api_key="e2b_wrong"))
    assert str(info.value) == AUTH_MESSAGE
    assert standin.created == []


async def test_rate_limit_one_line(standin: E2BStandIn) -> None:
    standin.api_status = 429
    with pytest.raises(SandboxError) as info:
        await E2BSandbox.create(**standin.sdk_kwargs())
    assert str(info.value) == RATE_LIMIT_MESSAGE


async def test_unreachable_one_line() -> None:
    dead = _refusing_url()
    with pytest.raises(SandboxError) as info:
        await E2BSandbox.create(api_key="e2b_x", api_url=dead, sandbox_url=dead, retries=0)
    message = str(info.value)
    assert message.startswith("cannot reach E2B (") and message.endswith(
        "check the network or proxy"
    )
    assert "\n" not in message


async def test_check_status(standin: E2BStandIn) -> None:
    kwargs = standin.sdk_kwargs()
    key = kwargs.pop("api_key")
    assert (await check_e2b_status(key, **kwargs))[0] is True
    ok, message = await check_e2b_status("e2b_wrong", **kwargs)
    assert (ok, message) == (False, AUTH_MESSAGE)
    ok, message = await check_e2b_status(None, **kwargs)
    assert ok is False and "E2B_API_KEY" in message


async def test_kill_idempotent(sandbox: E2BSandbox, standin: E2BStandIn) -> None:
    await sandbox.kill()
    await sandbox.kill()
    assert standin.killed == [standin.created[-1]]
    assert not await sandbox.is_running()
    with pytest.raises(SandboxError):
        await sandbox.run_code("1")


async def test_unreachable_mid_session_one_line(sandbox: E2BSandbox, standin: E2BStandIn) -> None:
    await standin.stop()
    with pytest.raises(SandboxError) as info:
        await sandbox.run_code("1")
    message = str(info.value)
    assert message.startswith("cannot reach E2B") and "\n" not in message
    assert not await sandbox.is_running()
