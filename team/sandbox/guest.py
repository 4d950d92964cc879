"""Code that runs *inside* the local sandbox, kept as a real module.

Nothing of the app is importable in the sandbox (the project folder is not
mounted there), so the host sends this module's source (`inspect.getsource`)
followed by one call: `exec_with_limits` is the first program of every
sandboxed process (it sets the resource limits from inside the user namespace,
where they count only the sandbox's own processes, then becomes the real
program); `setup_kernel` runs once in every fresh kernel.

Only the standard library may be imported at module level: the same source
runs before the kernel exists. Trust: this code runs where hostile code runs
later, so it protects nobody from that code; it only gives well-behaved code
E2B's behaviour and bounded output.
"""

from __future__ import annotations

import json
import os
import sys


def exec_with_limits(spec_json: str, argv: list[str]) -> None:
    """Apply rlimits, then exec `argv` (this process becomes the sandboxed program).

    `spec_json` is a JSON object of rlimit names (`RLIMIT_AS`, …) to values; a
    limit the host system refuses is reported on stderr and skipped, never fatal
    (the host already decided whether it may run at all).
    """
    import resource

    for name, value in json.loads(spec_json).items():
        which = getattr(resource, name, None)
        if which is None:
            continue
        try:
            _soft, hard = resource.getrlimit(which)
            limit = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(which, (limit, limit))
        except (OSError, ValueError) as exc:
            print(f"sbteam: cannot set {name}: {exc}", file=sys.stderr)
    os.execvp(argv[0], argv)


def setup_kernel(site: str, home: str, output_chunk: int) -> None:
    """E2B's extras in a fresh IPython kernel.

    - `site` (where install_package puts packages) is put first on sys.path with
      its .pth files processed; it is not on the path at interpreter start, so
      nothing written there runs before the host has connected. It is not made
      here (it appears in /home/user/.local once something is installed).
    - Results get E2B's extra formats: `data` for a pandas DataFrame, `chart` for
      a matplotlib figure (via e2b-charts, as E2B's template does); gated on
      sys.modules so pandas and matplotlib load only when the code uses them.
    - stdout/stderr are flushed whenever a cell has buffered `output_chunk`
      characters, so a printing loop reaches the host in bounded messages
      (ipykernel otherwise buffers everything printed in 0.2 s into one message).
    """
    import math
    import site as site_module

    from IPython import get_ipython
    from IPython.core.formatters import BaseFormatter
    from traitlets import ObjectName, Unicode

    site_module.addsitedir(site)  # may not exist yet: pip makes it, then the host refreshes
    if site in sys.path:
        sys.path.remove(site)
    sys.path.insert(0, site)
    os.chdir(home)

    def clean(value):
        if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
            return None
        if hasattr(value, "isoformat"):
            return value.isoformat()
        if hasattr(value, "item") and not isinstance(value, (str, bytes)):
            try:
                return clean(value.item())
            except Exception:
                return str(value)
        return value

    class DataFormatter(BaseFormatter):
        format_type = Unicode("e2b/data")
        print_method = ObjectName("_repr_e2b_data_")
        _return_type = (dict, str)

        def __call__(self, obj):
            pandas = sys.modules.get("pandas")
            if pandas is None or not isinstance(obj, pandas.DataFrame):
                return super().__call__(obj)
            try:
                data = obj.to_dict(orient="list")
                return {str(k): [clean(v) for v in col] for k, col in data.items()}
            except Exception:
                return None

    class ChartFormatter(BaseFormatter):
        format_type = Unicode("e2b/chart")
        print_method = ObjectName("_repr_e2b_chart_")
        _return_type = (dict, str)

        def __call__(self, obj):
            if sys.modules.get("matplotlib") is None:
                return super().__call__(obj)
            from matplotlib.figure import Figure

            if not isinstance(obj, Figure):
                return super().__call__(obj)
            try:
                from e2b_charts import chart_figure_to_chart

                chart = chart_figure_to_chart(obj)
                return chart.model_dump(mode="json") if chart is not None else None
            except Exception:
                return None

    ip = get_ipython()
    fmt = ip.display_formatter
    fmt.formatters["e2b/data"] = DataFormatter(parent=fmt)
    fmt.formatters["e2b/chart"] = ChartFormatter(parent=fmt)
    _bound_output(output_chunk)


def _bound_output(limit: int) -> None:
    """Flush ipykernel's stream buffer once it holds `limit` characters."""
    try:
        from ipykernel.iostream import OutStream
    except ImportError:
        return
    write = OutStream.write
    if getattr(write, "_sbteam_bounded", False):
        return

    def bounded_write(self, string):
        n = write(self, string)
        try:
            buffer = self._buffers.get(frozenset(self.parent_header.items()))
            if buffer is not None and buffer.tell() >= limit:
                self.flush()
        except Exception:
            pass
        return n

    bounded_write._sbteam_bounded = True
    OutStream.write = bounded_write


def probe() -> dict:
    """What `doctor` shows of the sandbox, measured from inside."""
    import resource

    status = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("CapEff", "CapBnd", "NoNewPrivs", "Seccomp"):
                    status[key] = value.strip()
    except OSError:
        pass

    def readable(path):
        try:
            with open(path, "rb") as fh:
                fh.read(1)
            return True
        except OSError:
            return False

    limits = {}
    for name in ("RLIMIT_AS", "RLIMIT_NPROC", "RLIMIT_FSIZE"):
        soft, _hard = resource.getrlimit(getattr(resource, name))
        limits[name] = None if soft == resource.RLIM_INFINITY else soft
    return {
        "uid": os.getuid(),
        "gid": os.getgid(),
        "status": status,
        "shadow_readable": readable("/etc/shadow"),
        "rlimits": limits,
        "can_make_user_namespace": _can_unshare_user(),
    }


def _can_unshare_user() -> bool:
    """Whether code here could make a user namespace (and get capabilities inside it)."""
    import ctypes

    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        libc = ctypes.CDLL(None, use_errno=True)
        os._exit(0 if libc.unshare(0x10000000) == 0 else 1)  # CLONE_NEWUSER
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


if __name__ == "__main__" and sys.argv[:1] == ["-c"]:  # pragma: no cover - `python -c SOURCE`
    exec_with_limits(sys.argv[1], sys.argv[2:])
