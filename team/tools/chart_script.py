"""The code `generate_chart` runs inside the sandbox (local kernel or E2B), never on the host.

team/tools/chart.py sends the source of `__sbteam_chart` with `inspect.getsource`,
followed by one call with the paths and the chart kind as a JSON literal and a
`del`, so the user's namespace keeps no trace of it. That is why everything it
needs is imported inside the function under private names (a user's `pd` or
`json` is left alone) and why this module has no other top-level code: only the
function's own source travels. Kept a real module so it is linted and importable.
"""


def __sbteam_chart(args):
    import json as _json
    import os as _os

    import matplotlib
    import pandas as _pd

    matplotlib.use("Agg")
    import matplotlib.pyplot as _plt

    src, dst, kind = args["src"], args["dst"], args["kind"]
    if src.lower().endswith(".json"):
        with open(src) as fh:
            raw = _json.load(fh)
        if isinstance(raw, dict) and all(not isinstance(v, (list, dict)) for v in raw.values()):
            df = _pd.DataFrame({"value": list(raw.values())}, index=[str(k) for k in raw])
        else:
            df = _pd.DataFrame(raw)
    else:
        df = _pd.read_csv(src)

        def _is_number(text):
            try:
                float(text)
            except ValueError:
                return False
            return True

        if all(_is_number(str(c)) for c in df.columns):  # no header (np.savetxt): row 1 is data
            df = _pd.read_csv(src, header=None)
            df.columns = [f"column_{i + 1}" for i in range(len(df.columns))]
    num = df.select_dtypes("number")
    if num.empty:
        raise ValueError("no numeric column to plot")
    fig, ax = _plt.subplots(figsize=(8, 5))
    if kind == "hist":
        num.plot.hist(ax=ax, bins=20, alpha=0.7, edgecolor="black")
    elif kind == "pie":
        num.iloc[:, 0].abs().plot.pie(ax=ax, autopct="%1.1f%%")
        ax.set_ylabel("")
    elif kind == "scatter":
        if num.shape[1] >= 2:
            num.plot.scatter(x=num.columns[0], y=num.columns[1], ax=ax)
        else:
            ax.scatter(range(len(num)), num.iloc[:, 0])
    elif kind == "line":
        num.plot.line(ax=ax)
    else:
        num.head(50).plot.bar(ax=ax)
    ax.set_title(_os.path.basename(src) + " (" + kind + ")")
    fig.tight_layout()
    fig.savefig(dst)
    _plt.close(fig)
