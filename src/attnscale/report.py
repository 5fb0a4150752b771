"""The main job: run every experiment and write one self-contained HTML page.

``build_report`` runs the experiments of :mod:`attnscale.experiments` through
the results store (so a killed run resumes where it stopped) and an executor
(process pool or Dask), then writes ``index.html`` (figures inlined as PNG, the
claims table with a pass/fail mark, the command and versions used) and
``claims.json`` (the same rows).
"""

from __future__ import annotations

import base64
import html
import importlib
import io
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ._validate import InputError, check_int
from .experiments import EXPERIMENTS, Claim


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

    Results are stored under ``out/store``; re-running with the same
    arguments skips every finished task.

    Examples
    --------
    >>> import tempfile
    >>> s = build_report(tempfile.mkdtemp(), quick=True, workers=1, quiet=True,
    ...                  experiments=["supercritical"])                       # doctest: +SKIP
    """
    import matplotlib

    matplotlib.use("Agg")
    from .parallel import make_executor, progress_display
    from .store import ResultStore

    seed = check_int(seed, "seed", minimum=0)
    unknown = [e for e in experiments if e not in EXPERIMENTS]
    if unknown:
        raise InputError(f"experiments: unknown {unknown}; expected names among {', '.join(EXPERIMENTS)}")
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    store = ResultStore(out_dir / "store")
    executor = make_executor(workers=workers, scheduler=scheduler)
    start = time.monotonic()
    sections: list[Section] = []
    try:
        with progress_display(quiet=quiet) as progress:
            for name in experiments:
                sections.append(_run_experiment(name, quick, seed, store, executor, progress))
    finally:
        executor.close()
    seconds = time.monotonic() - start
    claims = tuple(c for s in sections for c in s.claims)
    meta = _provenance(command, quick, seed, workers, scheduler, seconds)
    (out_dir / "claims.json").write_text(
        json.dumps({"meta": meta, "claims": [c.as_row() for c in claims]}, indent=1, allow_nan=False)
    )
    (out_dir / "index.html").write_text(render_html(sections, meta), encoding="utf-8")
    return ReportSummary(out_dir, claims, seconds)


def _run_experiment(name, quick, seed, store, executor, progress) -> Section:
    import matplotlib.pyplot as plt

    module = importlib.import_module(f"attnscale.experiments.{name}")
    t0 = time.monotonic()
    config = module.config(quick=quick, seed=seed)
    table = module.run(config, store, executor, progress=progress)
    fig = module.figure(table)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    claims = tuple(module.check(table))
    return Section(
        name=name,
        title=module.TITLE,
        theory_section=module.SECTION,
        figure_png=buf.getvalue(),
        claims=claims,
        seconds=time.monotonic() - t0,
        description=(module.__doc__ or "").strip().split("\n\n")[0],
    )


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


def _fmt(x: float) -> str:
    return f"{x:.5g}"


def render_html(sections: Sequence[Section], meta: dict) -> str:
    """The self-contained page: summary, claims table, one section per experiment."""
    claims = [c for s in sections for c in s.claims]
    n_ok = sum(c.ok for c in claims)
    rows = "\n".join(
        "<tr class='{cls}'><td class='mark'>{mark}</td><td>{exp}</td><td>{claim}</td><td>{theory}</td>"
        "<td>{measured}</td><td>[{lo}, {hi}]</td><td>{sec}</td><td>{note}</td></tr>".format(
            cls="ok" if c.ok else "fail",
            mark="&#10004;" if c.ok else "&#10008;",
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
        parts.append(
            f"<section id='{html.escape(s.name)}'><h2>{html.escape(s.title)}</h2>"
            f"<p class='meta'>docs/theory.md section {html.escape(s.theory_section)} &middot; "
            f"{len(s.claims)} claims &middot; {s.seconds:.1f} s</p>"
            f"<p>{html.escape(s.description)}</p>"
            f"<img alt='{html.escape(s.title)}' src='data:image/png;base64,{img}'></section>"
        )
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>attnscale report</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; width: 100%; font-size: 0.9em; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 4px 6px; text-align: left; vertical-align: top; }}
tr.ok td.mark {{ color: #1a7f37; font-weight: bold; }}
tr.fail td.mark {{ color: #cf222e; font-weight: bold; }}
tr.fail {{ background: #fff0f0; }}
img {{ max-width: 100%; }}
.meta {{ color: #666; font-size: 0.9em; }}
code {{ background: #f4f4f4; padding: 1px 4px; }}
</style></head><body>
<h1>attnscale report</h1>
<p><b>{n_ok} of {len(claims)} claims hold.</b> Each claim compares a value from the theory
(docs/theory.md) with a measurement and the measurement's acceptance interval
(4 standard errors plus any stated bias bound).</p>
<p class="meta">Command: <code>{html.escape(meta["command"])}</code><br>
{html.escape(meta["date"])} &middot; {meta["seconds"]} s &middot; seed {meta["seed"]} &middot;
workers {html.escape(str(meta["workers"]))} &middot; {html.escape(meta["platform"])}<br>
{html.escape(versions)}</p>
<h2>Claims</h2>
<table><thead><tr><th></th><th>experiment</th><th>claim</th><th>theory</th><th>measured</th>
<th>interval</th><th>section</th><th>note</th></tr></thead><tbody>
{rows}
</tbody></table>
{''.join(parts)}
</body></html>
"""
