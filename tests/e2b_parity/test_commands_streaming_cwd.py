"""NOT an upstream test: `commands.run` behaviour no E2B async test covers.

The issue asks for foreground `on_stdout`/`on_stderr`, the background handle, env
vars and `cwd`; upstream only touches them in passing (send_stdin's background
`on_stdout`, test_info's `cwd=`). These tests encode what E2B does, read from:

* the SDK, e2b 2.63.0: e2b/sandbox_async/commands/command.py (`Commands.run`:
  foreground returns `CommandResult` after `handle.wait()`, `background=True`
  returns the `AsyncCommandHandle`; callbacks get `str` chunks, sync or async),
  e2b/sandbox_async/commands/command_handle.py (`wait()` raises
  `CommandExitException` on a non-zero exit; `pid`, `stdout`, `stderr`,
  `exit_code` is None while running; `kill()` -> bool),
  e2b/sandbox/commands/command_handle.py (`CommandResult(stderr, stdout,
  exit_code, error)`, `CommandExitException(SandboxException, CommandResult)`);
* envd, github.com/e2b-dev/infra @ 54693ff353d26c5fe1951db5467e751f3e2f984e:
  packages/envd/internal/services/process/handler/handler.go (the command is
  `/bin/bash -l -c <cmd>`; cwd is resolved by permissions.ExpandAndResolve,
  relative to the user's home /home/user, and a missing cwd is INVALID_ARGUMENT;
  HOME is the user's home; the end event's exit_code is Go's
  ProcessState.ExitCode(), -1 for a process killed by a signal);
* the docs' streaming example, https://e2b.dev/docs/commands/streaming
  (`commands.run('echo hello; sleep 1; echo world', on_stdout=..., on_stderr=...)`).
"""

import time

import pytest
from e2b import (
    AsyncSandbox,
    CommandExitException,
    CommandResult,
    InvalidArgumentException,
    SandboxException,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_run_streams_stdout_and_stderr_to_callbacks(async_sandbox: AsyncSandbox):
    stdout: list = []
    stderr: list = []
    stamps: list = []

    def on_stdout(data):
        stdout.append(data)
        stamps.append(time.monotonic())

    result = await async_sandbox.commands.run(
        "echo hello; echo oops >&2; sleep 1; echo world",
        on_stdout=on_stdout,
        on_stderr=stderr.append,
    )
    returned_at = time.monotonic()

    assert isinstance(result, CommandResult)
    assert result.exit_code == 0
    assert result.error is None
    assert result.stdout == "hello\nworld\n"
    assert result.stderr == "oops\n"
    # callbacks get plain str chunks (not OutputMessage), the same text as the result
    assert all(isinstance(chunk, str) for chunk in stdout + stderr)
    assert "".join(stdout) == "hello\nworld\n"
    assert "".join(stderr) == "oops\n"
    # streamed while the command runs, not replayed at the end
    assert returned_at - stamps[0] > 0.5


async def test_run_with_async_callbacks(async_sandbox: AsyncSandbox):
    stdout: list = []
    stderr: list = []

    async def on_stdout(data):
        stdout.append(data)

    async def on_stderr(data):
        stderr.append(data)

    result = await async_sandbox.commands.run(
        "echo out; echo err >&2", on_stdout=on_stdout, on_stderr=on_stderr
    )

    assert result.exit_code == 0
    assert "".join(stdout) == "out\n"
    assert "".join(stderr) == "err\n"


async def test_run_nonzero_exit_raises_command_exit_exception(async_sandbox: AsyncSandbox):
    with pytest.raises(CommandExitException) as exc_info:
        await async_sandbox.commands.run("echo out; echo err >&2; exit 3")

    err = exc_info.value
    assert isinstance(err, SandboxException)
    assert isinstance(err, CommandResult)
    assert err.exit_code == 3
    assert err.stdout == "out\n"
    assert err.stderr == "err\n"


async def test_run_in_background_returns_handle(async_sandbox: AsyncSandbox):
    stdout: list = []

    handle = await async_sandbox.commands.run(
        "echo started; sleep 0.5; echo $FOO",
        background=True,
        envs={"FOO": "done"},
        on_stdout=stdout.append,
    )

    assert isinstance(handle.pid, int)
    assert handle.exit_code is None  # still running

    result = await handle.wait()

    assert isinstance(result, CommandResult)
    assert result.exit_code == 0
    assert result.stdout == "started\ndone\n"
    assert handle.stdout == "started\ndone\n"
    assert handle.stderr == ""
    assert handle.exit_code == 0
    assert "".join(stdout) == "started\ndone\n"


async def test_background_handle_kill(async_sandbox: AsyncSandbox):
    handle = await async_sandbox.commands.run("sleep 30", background=True)

    assert await handle.kill() is True

    with pytest.raises(CommandExitException) as exc_info:
        await handle.wait()
    assert exc_info.value.exit_code == -1  # killed by a signal (Go's ExitCode())


async def test_default_cwd_and_home(async_sandbox: AsyncSandbox):
    cmd = await async_sandbox.commands.run("pwd; echo $HOME")

    assert cmd.stdout == "/home/user\n/home/user\n"


async def test_run_with_cwd(async_sandbox: AsyncSandbox):
    await async_sandbox.files.make_dir("test_cmd_cwd/sub")

    relative = await async_sandbox.commands.run("pwd", cwd="test_cmd_cwd/sub")
    absolute = await async_sandbox.commands.run("pwd", cwd="/home/user/test_cmd_cwd")

    assert relative.stdout == "/home/user/test_cmd_cwd/sub\n"
    assert absolute.stdout == "/home/user/test_cmd_cwd\n"

    await async_sandbox.files.remove("test_cmd_cwd")


async def test_run_with_non_existing_cwd(async_sandbox: AsyncSandbox):
    with pytest.raises(InvalidArgumentException):
        await async_sandbox.commands.run("pwd", cwd="test_cmd_cwd_does_not_exist")


async def test_commands_and_files_share_the_filesystem(async_sandbox: AsyncSandbox):
    await async_sandbox.files.write("test_cmd_shared.txt", "from files.write")
    cmd = await async_sandbox.commands.run("cat test_cmd_shared.txt; echo made > test_cmd_made.txt")

    assert cmd.stdout == "from files.write"
    assert await async_sandbox.files.read("test_cmd_made.txt") == "made\n"

    await async_sandbox.files.remove("test_cmd_shared.txt")
    await async_sandbox.files.remove("test_cmd_made.txt")
