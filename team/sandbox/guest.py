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
    - Lists and dicts come back as JSON too, sequences are never shortened, and an
      image saved to a path is also shown (matplotlib's savefig included), all as
      E2B's template does (its startup scripts and kernel config).
    - stdout/stderr are flushed whenever a cell has buffered `output_chunk`
      characters, so a printing loop reaches the host in bounded messages
      (ipykernel otherwise buffers everything printed in 0.2 s into one message).
    """
    import math
    import site as site_module

    from IPython import get_ipython
    from IPython.core.formatters import BaseFormatter
    from IPython.core.formatters import JSONFormatter as JSONFormatterBase
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

    class JSONFormatter(JSONFormatterBase):
        """Lists and dicts also as application/json (E2B's template does it with orjson)."""

        def __call__(self, obj):
            if isinstance(obj, (list, dict)):
                try:
                    return json.loads(json.dumps(obj, default=_json_default)), {"expanded": True}
                except (TypeError, ValueError):
                    pass
            return super().__call__(obj)

    ip = get_ipython()
    fmt = ip.display_formatter
    fmt.formatters["e2b/data"] = DataFormatter(parent=fmt)
    fmt.formatters["e2b/chart"] = ChartFormatter(parent=fmt)
    fmt.formatters["application/json"] = JSONFormatter(parent=fmt)
    fmt.formatters["text/plain"].max_seq_length = 0  # whole sequences, as E2B's template
    _bound_output(output_chunk)
    _display_saved_images()


def _json_default(value):
    """numpy scalars and arrays, as orjson's OPT_SERIALIZE_NUMPY would give them."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(type(value).__name__)


SAVED_AS = "sbteam/saved_as"  # display metadata: this image result is a file the code saved


def _display_saved_images():
    """E2B's template: `PIL.Image.save` to a path also displays the image, so
    `plt.savefig("x.png")` gives a PNG result; and no image viewer is started.

    The template imports PIL at start-up; here PIL.Image is patched when the
    code first imports it (an import hook), so kernels that never draw pay nothing.
    """
    import importlib.abc
    import importlib.machinery

    def patch(module):
        image_class = module.Image
        if getattr(image_class.save, "_sbteam", False):
            return
        original = image_class.save

        def save(image, fp, format=None, **options):
            if isinstance(fp, str):
                from IPython.display import display

                display(image, metadata={SAVED_AS: fp})
            return original(image, fp, format, **options)

        save._sbteam = True
        image_class.save = save
        try:
            from PIL.ImageShow import UnixViewer

            UnixViewer.show_file = lambda self, path, **options: 0
        except ImportError:
            pass

    if "PIL.Image" in sys.modules:
        patch(sys.modules["PIL.Image"])
        return

    class Hook(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name != "PIL.Image":
                return None
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            loader = getattr(spec, "loader", None)
            if loader is None or not hasattr(loader, "exec_module"):
                return spec
            run = loader.exec_module

            def exec_module(module):
                run(module)
                patch(module)

            loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, Hook())


def _bound_output(limit: int) -> None:
    """Send stdout/stderr in messages of about `limit` characters at most.

    ipykernel buffers everything printed in 0.2 s into one message, and one huge
    print is one huge message; the host refuses messages over 64 MB (the kernel
    is then replaced), so well-behaved code must never send one.

    IPython 9 also "tees" each cell: it puts a `write` on the stream instance that
    keeps every byte printed in the history (kernel memory growing with output)
    and hides the class's `write` for good. The tee is switched off here (our
    history is off anyway), so the class's bounded `write` is what runs.
    """
    import contextlib

    try:
        from ipykernel.iostream import OutStream
        from IPython import get_ipython
    except ImportError:
        return
    write = OutStream.write
    if not getattr(write, "_sbteam_bounded", False):

        def bounded_write(self, string):
            if isinstance(string, str) and len(string) > limit:  # one huge print: in pieces
                for start in range(0, len(string), limit):
                    bounded_write(self, string[start : start + limit])
                return len(string)
            n = write(self, string)
            try:
                buffer = self._buffers.get(frozenset(self.parent_header.items()))
                if buffer is not None and buffer.tell() >= limit:
                    self.flush()
            except Exception:
                pass
            return n

        bounded_write._sbteam_bounded = True  # type: ignore[attr-defined]  # a marker read back on re-install
        OutStream.write = bounded_write  # type: ignore[method-assign]  # the patch is the point: bounded output

    @contextlib.contextmanager
    def no_tee(channel):
        stream = getattr(sys, channel)
        if "write" in vars(stream):  # put back by the tee of the cell that ran this setup
            del stream.write
        yield

    shell = get_ipython()
    if shell is not None and hasattr(shell, "_tee"):
        shell._tee = no_tee


def probe(hidden: list | None = None) -> dict:
    """What `doctor` shows of the sandbox, measured from inside.

    `hidden` are host paths that must not be visible here (the user's home, the
    project); those that are, are returned in "visible".
    """
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
        "visible": [p for p in (hidden or []) if _has_own_files(p)],
    }


def _has_own_files(path: str) -> bool:
    """Whether a host folder shows anything of its own here (not just a mount point on the
    way to the Python installation, which is bound read-only at its own path)."""
    try:
        names = os.listdir(path)
    except OSError:
        return False
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix)}
    return any(not any(x == os.path.join(path, n) or x.startswith(os.path.join(path, n) + "/") for x in prefixes) for n in names)


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
