"""One self-contained HTML page per sweep: ``spikegrad report SWEEP_DIR [--out FILE.html]``.

The page holds the sweep's definition (name, grid, seeds, the train tables), the trial
counts (complete, diverged, failed, pending, and the errors of failed trials), the
ranked configurations and the top-k table (:func:`spikegrad.sweeps.top_k_table`, the
code behind ``spikegrad sweep-table``), and every registered figure
(:data:`spikegrad.paper_figures.FIGURES`) that can be made from the sweep, its PNG
embedded as a base64 data URI and its CSV as a download link.  Figures that do not apply
are listed with the reason.  Only the standard library and what spikegrad already uses.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import tempfile
from pathlib import Path
from typing import Any, Sequence

from ._format import pm as _pm
from .errors import SpikegradError

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; }
th { background: #f2f2f2; }
td.l, th.l { text-align: left; }
img { max-width: 100%; border: 1px solid #ddd; }
pre { background: #f7f7f7; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
.muted { color: #777; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "–" if value != value else f"{value:.4f}"
    if isinstance(value, (list, dict, bool)) or value is None:
        return json.dumps(value)
    return str(value)


def html_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], left: Sequence[str] = ()) -> str:
    """An HTML table; every cell escaped (values formatted with :func:`_fmt` unless already text)."""
    cls = lambda c: ' class="l"' if c in left else ""  # noqa: E731
    head = "".join(f"<th{cls(c)}>{_e(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = "".join(f"<td{cls(c)}>{_e(v if isinstance(v, str) else _fmt(v))}</td>" for c, v in zip(columns, row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def data_uri(path: str | Path, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(Path(path).read_bytes()).decode('ascii')}"


def _failed_trials(study) -> list[tuple[int, str, str]]:
    from optuna.trial import TrialState

    out = []
    for t in sorted(study.get_trials(deepcopy=False, states=(TrialState.FAIL,)), key=lambda t: t.number):
        if "error" in t.user_attrs:
            out.append((t.number, t.user_attrs.get("point", ""), t.user_attrs["error"]))
    return out


def build_report(sweep_dir: str | Path, group: Sequence[str] = (), top_k: int = 5, storage: str | None = None,
                 study_name: str | None = None, figures: Sequence[str] | None = None) -> dict[str, Any]:
    """The page's HTML and what went into it: {"html", "figures" (made), "skipped" {name: reason}, "counts"}."""
    import tomli_w

    from . import paper_figures as pf
    from .sweeps import load_study, summary, top_k_table, trial_rows

    if top_k < 1:
        raise SpikegradError(f"--top-k must be ≥ 1, got {top_k}")
    sweep_dir = Path(sweep_dir)
    study, spec = load_study(sweep_dir, storage, study_name)
    counts = summary(study)
    rows = trial_rows(study)
    names = list(pf.FIGURES) if figures is None else list(figures)
    for name in names:
        pf.check_figure_name(name)

    parts = [f"<h1>Sweep {_e(spec.name)}</h1>",
             f'<p class="muted">{_e(sweep_dir)} · {"--quick" if spec.quick else "full grid"} · report written '
             f'{_e(_dt.datetime.now().strftime("%Y-%m-%d %H:%M"))}</p>']

    # -- definition
    parts.append("<h2>Configuration</h2>")
    parts.append(html_table(["grid key", "values"], [[k, json.dumps(v)] for k, v in spec.grid.items()],
                            left=("grid key", "values")))
    parts.append(f"<p>seeds: {_e(json.dumps(spec.seeds))} · {len(spec.points)} points (grid × seeds)</p>")
    base = tomli_w.dumps(spec.base) if spec.base else "(defaults)\n"
    parts.append(f"<details><summary>train tables (with --quick overrides applied)</summary><pre>{_e(base)}</pre>"
                 f"</details>")

    # -- status
    parts.append("<h2>Trials</h2>")
    parts.append(html_table(["points", "complete", "diverged", "failed", "pending"],
                            [[counts["points"], counts["complete"], counts["diverged"], counts["failed"],
                              counts["pending"]]]))
    parts.append('<p class="muted">complete counts diverged trials too (they keep the metrics of their best '
                 'epoch); failed: points whose trial raised an error.</p>')
    failed = _failed_trials(study)
    if failed:
        parts.append("<h3>Failed trials</h3>")
        parts.append(html_table(["trial", "point", "error"], failed, left=("point", "error")))

    # -- tables (the sweep-table code)
    parts.append("<h2>Configurations</h2>")
    if rows:
        ranked, summary_rows = top_k_table(rows, group, top_k, grid_keys=list(spec.grid))
        params = list(spec.grid)
        top_cols = [*group, "k / configs", "test (mean ± sd)", "val (mean ± sd)", "best configuration",
                    "best val", "best test", "diverged"]
        metric = ranked[0]["metric"] if ranked else "accuracy"
        parts.append(f"<h3>Top {top_k} per group: test {metric} (mean ± sd over the configurations)</h3>")
        parts.append(html_table(top_cols, [[*(json.dumps(s["group"][g]) for g in group), f"{s['k']}/{s['configs']}",
                                            _pm(s["test_mean"], s["test_sd"]), _pm(s["val_mean"], s["val_sd"]),
                                            " ".join(f"{k}={json.dumps(v)}" for k, v in s["best_params"].items()),
                                            s["best_val"], s["best_test"], s["diverged"]]
                                           for s in summary_rows], left=("best configuration",)))
        parts.append(f"<h3>Configurations by mean validation {metric} (seeds pooled)</h3>")
        parts.append(html_table(["rank", *params, "seeds", "val", "test", "diverged"],
                                [[c["rank"], *(json.dumps(c["params"][p]) for p in params), c["n_seeds"],
                                  _pm(c["val_mean"], c["val_sd"]), _pm(c["test_mean"], c["test_sd"]), c["diverged"]]
                                 for c in ranked]))
    else:
        parts.append("<p>No finished trials yet.</p>")

    # -- figures
    made: list[str] = []
    skipped: dict[str, str] = {}
    parts.append("<h2>Figures</h2>")
    try:
        results = pf.results_table([sweep_dir], storage, study_name)  # read once for every figure
    except SpikegradError as err:
        results, unreadable = None, " ".join(str(err).split())
    with tempfile.TemporaryDirectory(prefix="spikegrad-report-") as tmp:
        for name in names:
            if results is None:
                skipped[name] = unreadable
                continue
            result = {"png": Path(tmp) / f"{name}.png", "csv": Path(tmp) / f"{name}.csv"}
            try:
                pf.FIGURES[name](results, result["png"], result["csv"])
            except SpikegradError as err:
                skipped[name] = " ".join(str(err).split())
                continue
            except Exception as err:  # a figure bug must not cost the rest of the page
                skipped[name] = f"failed: {type(err).__name__}: {' '.join(str(err).split())}"
                continue
            made.append(name)
            doc = (pf.FIGURES[name].__doc__ or "").strip().split("\n\n")[0]
            parts.append(f'<h3 id="{_e(name)}">{_e(name)}</h3><p class="muted">{_e(" ".join(doc.split()))}</p>')
            parts.append(f'<img alt="{_e(name)}" src="{data_uri(result["png"], "image/png")}">')
            parts.append(f'<p><a download="{_e(name)}.csv" href="{data_uri(result["csv"], "text/csv")}">'
                         f'{_e(name)}.csv</a> (the numbers plotted)</p>')
    if skipped:
        parts.append("<h3>Not made</h3>")
        parts.append(html_table(["figure", "reason"], list(skipped.items()), left=("figure", "reason")))

    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>spikegrad sweep {_e(spec.name)}</title><style>{STYLE}</style></head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")
    return {"html": page, "figures": made, "skipped": skipped, "counts": counts, "spec": spec}


def write_report(sweep_dir: str | Path, out: str | Path | None = None, group: Sequence[str] = (), top_k: int = 5,
                 storage: str | None = None, study_name: str | None = None,
                 figures: Sequence[str] | None = None) -> dict[str, Any]:
    """Write the page to ``out`` (default ``SWEEP_DIR/report.html``); returns :func:`build_report`'s
    dict plus ``path``."""
    result = build_report(sweep_dir, group, top_k, storage, study_name, figures)
    path = Path(out) if out is not None else Path(sweep_dir) / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(result["html"], encoding="utf-8")
    result["path"] = path
    return result
