"""The main job: run every experiment and write one self-contained HTML page.

``build_report`` has the experiments of :mod:`attnscale.experiments` run by their runner
(:func:`attnscale.experiments._runner.run_experiments`, which owns the results store, so a
killed run resumes where it stopped, and the executor, a process pool or Dask), then writes
``index.html`` and ``claims.json`` (the claims, each traced to a statement id of
:data:`attnscale.experiments.STATEMENTS`).  This module is presentation only: it draws no
figure state of its own (each experiment returns a :class:`matplotlib.figure.Figure`, saved
with ``fig.savefig``) and imports no plotting library.

The page reads top down: a summary with one row per statement (verdict, its key
number with the interval, a link to the section); then one section per
experiment (figure inlined as PNG with one line saying what to see, its own
tables as HTML); the full claims table last, filterable by statement, text or
verdict.  A line per finished section goes to stderr (so a log shows progress
too), with the section's time.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ._validate import InputError, check_int
from .experiments import EXPERIMENTS, STATEMENTS, Claim


@dataclass(frozen=True)
class ReportSummary:
    """What a report run produced."""

    out: Path
    claims: tuple[Claim, ...]
    seconds: float

    @property
    def all_ok(self) -> bool:
        """True when every claim holds."""
        return all(c.ok for c in self.claims)


@dataclass(frozen=True)
class Section:
    """One experiment's part of the page."""

    name: str
    title: str
    theory_section: str
    figure_png: bytes
    claims: tuple[Claim, ...]
    seconds: float
    description: str
    what_to_see: str = ""
    tables: tuple = field(default_factory=tuple)


def build_report(
    out: str | os.PathLike[str],
    *,
    quick: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    seed: int = 0,
    quiet: bool = False,
    command: str = "attnscale report",
    experiments: Sequence[str] = EXPERIMENTS,
) -> ReportSummary:
    """Run ``experiments`` and write ``out/index.html`` and ``out/claims.json``.

    The experiments run through :func:`attnscale.experiments._runner.run_experiments`, which owns
    the results store (under ``out/store``: re-running with the same arguments skips every
    finished task) and the executor; this function only presents their tables.

    Examples
    --------
    ``build_report(folder, quick=True, experiments=["supercritical"])`` runs one experiment (about
    a minute on two cores); the names are checked before anything runs:

    >>> import tempfile
    >>> build_report(tempfile.mkdtemp(), quick=True, quiet=True, experiments=["no_such_experiment"])
    Traceback (most recent call last):
        ...
    attnscale._errors.InputError: experiments: unknown ['no_such_experiment']; expected names among phase_diagram, critical_exponent, critical_law, subcritical, supercritical, finite_n, large_d, output_law, heat, tail_classes, real_heads
    """
    from .experiments._runner import run_experiments

    seed = check_int(seed, "seed", minimum=0)
    unknown = [e for e in experiments if e not in EXPERIMENTS]
    if unknown:
        raise InputError(f"experiments: unknown {unknown}; expected names among {', '.join(EXPERIMENTS)}")
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    sections: list[Section] = []
    runs = run_experiments(
        list(experiments), quick=quick, seed=seed, store_dir=out_dir / "store", workers=workers,
        scheduler=scheduler, quiet=quiet,
    )
    for run in runs:
        section = make_section(run.name, run.module, run.table, run.seconds)
        sections.append(section)
        if not quiet:
            n_ok = sum(c.ok for c in section.claims)
            print(
                f"[report] {section.name}: {n_ok} of {len(section.claims)} claims hold, "
                f"{section.seconds:.1f} s ({time.monotonic() - start:.0f} s since the start)",
                file=sys.stderr,
                flush=True,
            )
    seconds = time.monotonic() - start
    claims = tuple(c for s in sections for c in s.claims)
    meta = _provenance(command, quick, seed, workers, scheduler, seconds)
    meta["section_seconds"] = {s.name: round(s.seconds, 1) for s in sections}
    meta["complete"] = set(experiments) == set(EXPERIMENTS)
    summary = summarize(claims, meta["complete"])
    (out_dir / "claims.json").write_text(
        json.dumps({"meta": meta, "summary": summary, "claims": [c.to_dict() for c in claims]}, indent=1, allow_nan=False)
    )
    (out_dir / "index.html").write_text(render_html(sections, meta), encoding="utf-8")
    return ReportSummary(out_dir, claims, seconds)


def make_section(name: str, module: Any, table: Any, seconds: float) -> Section:
    """One experiment's section: its figure (PNG), its claims traced to statements, its extra tables.

    ``seconds`` is the time its run took; the time to draw and check is added.  A ``claims``
    function that raises gives one failing claim saying why, not a lost report.
    """
    t0 = time.monotonic()
    fig = module.figure(table)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    try:
        claims = tuple(module.claims(table))
    except Exception as exc:  # a check that cannot run is a failing claim, not a lost report
        claims = (Claim.missing(f"{name}: the checks ran", 0.0, f"{type(exc).__name__}: {exc}", module.SECTION, name),)
    tables = tuple(module.tables(table)) if hasattr(module, "tables") else ()
    return Section(
        name=name,
        title=module.TITLE,
        theory_section=module.SECTION,
        figure_png=buf.getvalue(),
        claims=tuple(traced(c, module.STATEMENT) for c in claims),
        seconds=seconds + (time.monotonic() - t0),
        description=(module.__doc__ or "").strip().split("\n\n")[0],
        what_to_see=module.WHAT_TO_SEE,
        tables=tables,
    )


def traced(claim: Claim, default: str = "") -> Claim:
    """``claim`` with its statement id: its own, else ``default`` (the module's ``STATEMENT``).

    A claim with neither, or with an id not in :data:`STATEMENTS`, is turned into a failing claim
    that says so: every row of claims.json traces to a statement.

    Examples
    --------
    >>> traced(Claim.within("x", 1.0, 1.0, 0.1, section="3"), "S6").statement
    'S6'
    >>> traced(Claim.within("x", 1.0, 1.0, 0.1, section="3")).ok
    False
    """
    statement = claim.statement or default
    if statement in STATEMENTS:
        return replace(claim, statement=statement)
    return replace(claim, ok=False, statement="", note=f"no statement id (got {statement!r}); {claim.note}")


def summarize(claims: Sequence[Claim], complete: bool = True) -> list[dict]:
    """One row per statement of :data:`STATEMENTS`: verdict, claim counts, its key claim.

    The key claim is the statement's first claim in page order (each experiment lists its most
    telling claim first).  The verdict is ``"holds"`` (every claim holds), ``"fails"``, or, with no
    claim, ``"no claim"`` when every experiment ran (``complete``) and ``"not run"`` otherwise.

    Examples
    --------
    >>> rows = summarize([Claim.within("x", 1.0, 1.02, 0.1, section="3", experiment="e", statement="S6")], complete=False)
    >>> [(r["statement"], r["verdict"]) for r in rows[4:7]]
    [('S5', 'not run'), ('S6', 'holds'), ('S7', 'not run')]
    """
    rows = []
    for sid, text in STATEMENTS.items():
        mine = [c for c in claims if c.statement == sid]
        n_ok = sum(c.ok for c in mine)
        if mine:
            verdict = "holds" if n_ok == len(mine) else "fails"
        else:
            verdict = "no claim" if complete else "not run"
        key = mine[0].to_dict() if mine else None
        rows.append({"statement": sid, "text": text, "verdict": verdict, "claims": len(mine), "claims_ok": n_ok, "key": key})
    return rows


def _provenance(command, quick, seed, workers, scheduler, seconds) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for pkg in ("attnscale", "numpy", "scipy", "matplotlib", "pyarrow"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = "not installed"
    return {
        "command": command,
        "quick": quick,
        "seed": seed,
        "workers": workers if workers is not None else (os.cpu_count() or 1),
        "scheduler": scheduler,
        "seconds": round(seconds, 2),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "platform": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores",
        "versions": versions,
        "argv": sys.argv[1:],
    }


def _fmt(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.5g}"


def _key_number(row: dict | None) -> str:
    """``measured [lo, hi] vs theory`` of a claims.json row, or a dash."""
    if row is None:
        return "&ndash;"
    lo, hi = row["interval"]
    return (
        f"{_fmt(row['measured'])} <span class='meta'>[{_fmt(lo)}, {_fmt(hi)}]</span> vs {_fmt(row['theory'])}"
        f"<br><span class='meta'>{html.escape(row['claim'])}</span>"
    )


def _html_table(title: str, columns: Sequence[str], rows: Sequence[Sequence]) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "\n".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r) + "</tr>" for r in rows)
    return f"<h3>{html.escape(title)}</h3><table class='data'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_FILTER_JS = """
function filterClaims() {
  const text = document.getElementById('q').value.toLowerCase();
  const st = document.getElementById('st').value;
  const bad = document.getElementById('bad').checked;
  for (const tr of document.querySelectorAll('#claims tbody tr')) {
    const show = tr.textContent.toLowerCase().includes(text) && (!st || tr.dataset.statement === st)
      && (!bad || tr.classList.contains('fail'));
    tr.style.display = show ? '' : 'none';
  }
}
"""


def render_html(sections: Sequence[Section], meta: dict) -> str:
    """The self-contained page: the summary by statement, the sections, the full claims table last."""
    claims = [c for s in sections for c in s.claims]
    n_ok = sum(c.ok for c in claims)
    section_of = {}
    for s in sections:
        for c in s.claims:
            section_of.setdefault(c.statement, s.name)
    verdict_mark = {"holds": ("ok", "&#10004; holds"), "fails": ("fail", "&#10008; fails"),
                    "no claim": ("fail", "&#10008; no claim"), "not run": ("na", "not run")}
    summary_rows = []
    for row in summarize(claims, meta.get("complete", True)):
        cls, mark = verdict_mark[row["verdict"]]
        sid = row["statement"]
        link = (f"<a href='#{html.escape(section_of[sid])}'>{html.escape(section_of[sid])}</a>"
                if sid in section_of else "&ndash;")
        summary_rows.append(
            f"<tr class='{cls}' id='statement-{sid}'><td><b>{sid}</b></td><td>{html.escape(row['text'])}</td>"
            f"<td class='verdict'>{mark}</td><td>{row['claims_ok']} / {row['claims']}</td>"
            f"<td>{_key_number(row['key'])}</td><td>{link}</td></tr>"
        )
    rows = "\n".join(
        "<tr class='{cls}' data-statement='{st}'><td class='mark'>{mark}</td><td>{st}</td><td>{exp}</td><td>{claim}</td>"
        "<td>{theory}</td><td>{measured}</td><td>[{lo}, {hi}]</td><td>{sec}</td><td>{note}</td></tr>".format(
            cls="ok" if c.ok else "fail",
            mark="&#10004;" if c.ok else "&#10008;",
            st=html.escape(c.statement),
            exp=html.escape(c.experiment),
            claim=html.escape(c.claim),
            theory=_fmt(c.theory),
            measured=_fmt(c.measured),
            lo=_fmt(c.interval[0]),
            hi=_fmt(c.interval[1]),
            sec=html.escape(c.section),
            note=html.escape(c.note),
        )
        for c in claims
    )
    parts = []
    for s in sections:
        img = base64.b64encode(s.figure_png).decode("ascii")
        statements = sorted({c.statement for c in s.claims if c.statement}, key=list(STATEMENTS).index)
        look = f"<p class='look'><b>What to see:</b> {html.escape(s.what_to_see)}</p>" if s.what_to_see else ""
        extra = "".join(_html_table(*t) for t in s.tables)
        parts.append(
            f"<section id='{html.escape(s.name)}'><h2>{html.escape(s.title)}</h2>"
            f"<p class='meta'>statements {', '.join(statements) or '&ndash;'} &middot; docs/theory.md section "
            f"{html.escape(s.theory_section)} &middot; {sum(c.ok for c in s.claims)} of {len(s.claims)} claims hold "
            f"&middot; {s.seconds:.1f} s</p>"
            f"<p>{html.escape(s.description)}</p>{look}"
            f"<img alt='{html.escape(s.title)}' src='data:image/png;base64,{img}'>{extra}</section>"
        )
    options = "".join(f"<option value='{k}'>{k}</option>" for k in STATEMENTS)
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>attnscale report</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; width: 100%; font-size: 0.9em; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 4px 6px; text-align: left; vertical-align: top; }}
tr.ok td.mark, tr.ok td.verdict {{ color: #1a7f37; font-weight: bold; }}
tr.fail td.mark, tr.fail td.verdict {{ color: #cf222e; font-weight: bold; }}
tr.na td.verdict {{ color: #888; }}
td.verdict {{ white-space: nowrap; }}
tr.fail {{ background: #fff0f0; }}
img {{ max-width: 100%; }}
.meta {{ color: #666; font-size: 0.9em; }}
.look {{ background: #f6f8fa; border-left: 3px solid #0969da; padding: 4px 8px; }}
code {{ background: #f4f4f4; padding: 1px 4px; }}
</style><script>{_FILTER_JS}</script></head><body>
<h1>attnscale report: what the paper says, and whether it holds</h1>
<p><b>{n_ok} of {len(claims)} claims hold.</b> Each claim compares a value from the theory
(docs/theory.md) or an independent computation (quadrature, closed form, brute force) with a
measurement and its acceptance interval (4 standard errors plus any stated bias bound).
One row per statement; the key number is the statement's first claim: measured [interval] vs theory.</p>
<h2 id="summary">Summary by statement</h2>
<table id="summary-table"><thead><tr><th>id</th><th>statement</th><th>verdict</th><th>claims holding</th>
<th>key number</th><th>section</th></tr></thead><tbody>
{''.join(summary_rows)}
</tbody></table>
<p class="meta">Command: <code>{html.escape(meta["command"])}</code><br>
{html.escape(meta["date"])} &middot; {meta["seconds"]} s &middot; seed {meta["seed"]} &middot;
workers {html.escape(str(meta["workers"]))} &middot; {html.escape(meta["platform"])}<br>
{html.escape(versions)}</p>
{''.join(parts)}
<h2 id="claims-section">All claims</h2>
<p>Filter: <input id="q" oninput="filterClaims()" placeholder="text"> <select id="st" onchange="filterClaims()">
<option value="">every statement</option>{options}</select>
<label><input type="checkbox" id="bad" onchange="filterClaims()"> failing only</label></p>
<table id="claims"><thead><tr><th></th><th>statement</th><th>experiment</th><th>claim</th><th>theory</th><th>measured</th>
<th>interval</th><th>section</th><th>note</th></tr></thead><tbody>
{rows}
</tbody></table>
</body></html>
"""
