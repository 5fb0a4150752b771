"""Command line: ``attnscale critical | simulate | exponent``.

Every command prints a human table by default and one JSON object with
``--json``.  Bad input becomes one line on stderr and exit code 2, never a
traceback (DESIGN.md, "Command line").
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from ._validate import check_beta, check_choice, check_int, check_n, check_positive
from .laws import LAW_NAMES

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Long-context scaling theory of softmax attention, computable and checkable.",
)

METHODS = ("brute", "fast", "limit")

# Reusable option declarations (one place for help texts and defaults).
LawOpt = Annotated[str, typer.Option("--law", help=f"Key law: {', '.join(LAW_NAMES)}.")]
DimOpt = Annotated[int, typer.Option("--d", help="Ambient dimension d (keys on S^{d-1}).")]
NOpt = Annotated[str, typer.Option("--n", help="Context length n (1000000, 1e6 and 1000000.0 alike).")]
KappaOpt = Annotated[float, typer.Option("--kappa", help="vmf: concentration of the keys around e_1.")]
SubdimOpt = Annotated[int, typer.Option("--subdim", help="subsphere: keys uniform on S^{subdim-1}.")]
EtaOpt = Annotated[float, typer.Option("--eta", help="power: key density proportional to |k - e_1|^eta.")]
SigmaOpt = Annotated[float, typer.Option("--sigma", help="gaussian: keys N(0, sigma^2 I) in R^d.")]
QueryCosOpt = Annotated[
    float,
    typer.Option("--query-cos", help="Cosine between the query and the law's axis e_1 (1: q = e_1)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")]


class UsageError(ValueError):
    """Bad command-line input (reported as one line, exit code 2)."""


@dataclass(frozen=True)
class LawSpec:
    """A key law chosen on the command line, with the query it is seen from."""

    name: str
    d: int
    kappa: float
    subdim: int
    eta: float
    query_cos: float
    sigma: float = 1.0

    def build(self):
        """The :class:`attnscale.laws.KeyLaw` and the unit query."""
        from .laws import law_from_name

        params: dict[str, Any] = {}
        if self.name == "vmf":
            params["kappa"] = self.kappa
        elif self.name == "subsphere":
            params["m"] = self.subdim
        elif self.name == "power":
            params["eta"] = self.eta
        elif self.name == "gaussian":
            params["sigma"] = self.sigma
        law = law_from_name(self.name, self.d, **params)
        return law, query_from_cosine(self.d, self.query_cos)


def query_from_cosine(d: int, cos: float) -> np.ndarray:
    """Unit query ``cos e_1 + sqrt(1 - cos^2) e_d``.

    Examples
    --------
    >>> query_from_cosine(3, 1.0).tolist()
    [1.0, 0.0, 0.0]
    """
    if not (isinstance(cos, (int, float)) and math.isfinite(cos) and -1.0 <= cos <= 1.0):
        raise UsageError(f"--query-cos: got {cos!r}; expected a number in [-1, 1]")
    q = np.zeros(d)
    q[0] = cos
    q[-1] += math.sqrt(max(0.0, 1.0 - cos * cos))
    return q / np.linalg.norm(q)


def _finite_or_none(value: Any) -> Any:
    """Replace infinities and NaN (not JSON) by None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def _emit(payload: dict[str, Any], as_json: bool, title: str) -> None:
    payload = _finite_or_none(payload)
    if as_json:
        typer.echo(json.dumps(payload, allow_nan=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_header=True)
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for key, value in _flatten(payload):
        table.add_row(key, value)
    Console().print(table)


def _flatten(payload: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Rows of the human table: nested dicts become dotted names, lists a row count."""
    rows: list[tuple[str, str]] = []
    for key, value in payload.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and all(not isinstance(v, (dict, list)) for v in value.values()):
            rows.append((name, "  ".join(f"{k}={_fmt(v)}" for k, v in value.items())))
        elif isinstance(value, dict):
            rows.extend(_flatten(value, f"{name}.") if value else [(name, "-")])
        elif isinstance(value, list):
            rows.append((name, f"{len(value)} rows (use --json)"))
        else:
            rows.append((name, _fmt(value)))
    return rows


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def summary(x: np.ndarray) -> dict[str, float]:
    """Mean, its standard error and the 5/50/95% quantiles of per-draw values.

    Examples
    --------
    >>> summary(np.array([1.0, 2.0, 3.0]))["mean"]
    2.0
    """
    x = np.asarray(x, dtype=float)
    se = float(np.std(x, ddof=1) / math.sqrt(x.size)) if x.size > 1 else 0.0
    q05, q50, q95 = np.quantile(x, [0.05, 0.5, 0.95])
    return {"mean": float(np.mean(x)), "se": se, "q05": float(q05), "q50": float(q50), "q95": float(q95)}


@app.command()
def critical(
    law: LawOpt = "uniform",
    d: DimOpt = 3,
    n: NOpt = "1e6",
    beta: Annotated[float | None, typer.Option("--beta", help="Inverse temperature (gives c).")] = None,
    kappa: KappaOpt = 10.0,
    subdim: SubdimOpt = 2,
    eta: EtaOpt = 1.0,
    query_cos: QueryCosOpt = 1.0,
    sigma: SigmaOpt = 1.0,
    as_json: JsonOpt = False,
) -> None:
    """Critical scale beta*(n) of a key law, and the regime of (n, beta) (theory section 2)."""
    from .tails import critical_beta, regime

    spec = _law_spec(law, d, kappa, subdim, eta, query_cos, sigma)
    key_law, q = spec.build()
    n_int = check_n(n, "--n")
    tail = key_law.score_tail(q)
    payload: dict[str, Any] = {
        "law": spec.name,
        "d": spec.d,
        "n": n_int,
        "endpoint": tail.endpoint,
        "gamma": tail.gamma,
        "kappa": tail.kappa,
        "beta_star": critical_beta(n_int, tail),
        "c": None,
        "regime": None,
    }
    if beta is not None:
        reg = regime(n_int, check_beta(beta, "--beta"), tail)
        payload["c"], payload["regime"] = reg.c, reg.name
    _emit(payload, as_json, "attnscale critical")


@app.command()
def simulate(
    law: LawOpt = "uniform",
    d: DimOpt = 3,
    n: NOpt = "1e5",
    beta: Annotated[float | None, typer.Option("--beta", help="Inverse temperature.")] = None,
    c: Annotated[float | None, typer.Option("--c", help="beta / beta*(n) (instead of --beta).")] = None,
    reps: Annotated[int, typer.Option("--reps", help="Number of independent draws.")] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the SeedSequence.")] = 0,
    method: Annotated[str, typer.Option("--method", help="brute | fast | limit.")] = "brute",
    m: Annotated[int | None, typer.Option("--m", help="Top weights kept (fast, limit).")] = None,
    gamma: Annotated[float | None, typer.Option("--gamma", help="limit: tail exponent (else the law's).")] = None,
    save_samples: Annotated[
        Path | None,
        typer.Option("--save-samples", help="Write per-draw statistics, outputs and scaled tangential norms to FILE.npz."),
    ] = None,
    kappa: KappaOpt = 10.0,
    subdim: SubdimOpt = 2,
    eta: EtaOpt = 1.0,
    query_cos: QueryCosOpt = 1.0,
    sigma: SigmaOpt = 1.0,
    as_json: JsonOpt = False,
) -> None:
    """Draw the attention weights' statistics at (n, beta): brute force, fast sampler (exact top m, Gaussian rest), or limit law."""
    from .simulate import simulate_stats

    check_choice(method, "--method", METHODS)
    if (beta is None) == (c is None):
        raise UsageError("--beta/--c: give exactly one of --beta B or --c C")
    if save_samples is not None and save_samples.suffix != ".npz":
        raise UsageError(f"--save-samples: got {str(save_samples)!r}; expected a file name ending in .npz")
    spec = _law_spec(law, d, kappa, subdim, eta, query_cos, sigma)
    key_law, q = spec.build()
    result = simulate_stats(
        key_law,
        q,
        n=check_n(n, "--n"),
        beta=None if beta is None else check_beta(beta, "--beta"),
        c=None if c is None else check_positive(c, "--c"),
        reps=check_int(reps, "--reps"),
        seed=check_int(seed, "--seed", minimum=0),
        method=method,
        m=None if m is None else check_int(m, "--m"),
        gamma=None if gamma is None else check_positive(gamma, "--gamma"),
        progress=not as_json,
    )
    if save_samples is not None:
        save_samples.parent.mkdir(parents=True, exist_ok=True)
        np.savez(save_samples, **result.samples())
    payload = {
        "method": method,
        "n": result.n,
        "beta": result.beta,
        "c": result.c,
        "reps": result.reps,
        "max_weight": summary(result.max_weight),
        "n_eff": summary(result.n_eff),
        "entropy": summary(result.entropy),
        "output": None
        if result.output is None
        else {
            "radial_mean": float(np.mean(result.radial)),
            "tangential_var": result.tangential_var,
            "scaled_tangential_norm": summary(result.scaled_tangential_norm),
        },
    }
    _emit(payload, as_json, f"attnscale simulate --method {method}")


@app.command()
def exponent(
    law: LawOpt = "uniform",
    d: DimOpt = 3,
    n_min: Annotated[str, typer.Option("--n-min", help="Smallest n of the grid.")] = "1e6",
    n_max: Annotated[str, typer.Option("--n-max", help="Largest n of the grid (up to 1e18).")] = "1e15",
    points: Annotated[int, typer.Option("--points", help="Number of n on the log grid (>= 4).")] = 10,
    size: Annotated[int, typer.Option("--size", help="Common draws per point.")] = 20000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the draws.")] = 0,
    kappa: KappaOpt = 10.0,
    subdim: SubdimOpt = 2,
    eta: EtaOpt = 1.0,
    query_cos: QueryCosOpt = 1.0,
    sigma: SigmaOpt = 1.0,
    as_json: JsonOpt = False,
) -> None:
    """Exact finite-n critical curve beta_half(n) and its fitted exponent (theory section 5)."""
    from .exponent import exponent_curve

    spec = _law_spec(law, d, kappa, subdim, eta, query_cos, sigma)
    key_law, q = spec.build()
    result = exponent_curve(
        key_law,
        None,
        check_n(n_min, "--n-min"),
        check_n(n_max, "--n-max"),
        check_int(points, "--points", minimum=4),
        check_int(size, "--size"),
        check_int(seed, "--seed", minimum=0),
        q=q,
    )
    payload = result.to_dict()
    if as_json:
        _emit(payload, True, "")
        return
    _emit({k: v for k, v in payload.items() if k != "table"}, False, "attnscale exponent")
    from rich.console import Console
    from rich.table import Table

    table = Table(title="critical curve")
    for col in ("n", "beta_half", "beta_half / beta*(n)"):
        table.add_column(col, justify="right")
    for row in payload["table"]:
        table.add_row(f"{row['n']:.3g}", f"{row['beta_half']:.6g}", f"{row['beta_half_over_beta_star']:.4f}")
    Console().print(table)


@app.command()
def heat(
    sphere: Annotated[int, typer.Option("--sphere", help="1: the circle S^1; 2: the sphere S^2.")] = 1,
    quick: Annotated[bool, typer.Option("--quick/--full", help="5 (quick) or 9 values of beta.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Attention as one backward heat step: fitted error orders of the map and the pushed density (section 6)."""
    from .heat import heat_summary

    if sphere not in (1, 2):
        raise UsageError(f"--sphere: got {sphere}; expected 1 (circle) or 2 (sphere)")
    payload = heat_summary(sphere, quick=quick)
    if as_json:
        _emit(payload, True, "")
        return
    _emit({k: v for k, v in payload.items() if k != "table"}, False, f"attnscale heat --sphere {sphere}")
    from rich.console import Console
    from rich.table import Table

    table = Table(title="errors against beta")
    for col in payload["table"][0]:
        table.add_column(col, justify="right")
    for row in payload["table"]:
        table.add_row(*(f"{v:.4g}" for v in row.values()))
    Console().print(table)


def _load_array(path: Path | None, option: str) -> np.ndarray | None:
    if path is None:
        return None
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UsageError(f"{option}: no such file {str(path)!r}") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{option}: cannot read {str(path)!r} as a .npy array ({exc})") from None


@app.command()
def estimate(
    keys: Annotated[Path | None, typer.Option("--keys", help="Keys, an (n, d) .npy array.")] = None,
    query: Annotated[Path | None, typer.Option("--query", help="Query (d,) or queries (k, d), .npy.")] = None,
    scores: Annotated[Path | None, typer.Option("--scores", help="Scores, a 1-D .npy array (instead of keys).")] = None,
    n: Annotated[list[str] | None, typer.Option("--n", help="Context length(s) for beta*(n) (repeatable).")] = None,
    n_total: Annotated[str | None, typer.Option("--n-total", help="Population size the scores are the top of.")] = None,
    level: Annotated[float, typer.Option("--level", help="Confidence level of the intervals.")] = 0.95,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the interval computation.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Estimate the score tail (endpoint, gamma, kind) from data, and beta*(n) with its interval (section 2)."""
    from .estimate import estimate_summary

    if (scores is None) == (keys is None):
        raise UsageError("--keys/--scores: give --keys K.npy with --query q.npy, or --scores S.npy")
    if keys is not None and query is None:
        raise UsageError("--query: required with --keys")
    if not (0.0 < level < 1.0):
        raise UsageError(f"--level: got {level}; expected a number in (0, 1)")
    ns = [check_n(x, "--n") for x in n] if n else None
    total = None if n_total is None else check_n(n_total, "--n-total")
    if scores is not None:
        payload = estimate_summary(_load_array(scores, "--scores"), ns=ns, n_total=total, level=level, rng=seed)
    else:
        payload = estimate_summary(
            _load_array(query, "--query"), _load_array(keys, "--keys"), ns=ns, n_total=total, level=level, rng=seed
        )
    _emit(payload, as_json, "attnscale estimate")


@app.command()
def schedules(
    train_len: Annotated[str, typer.Option("--train-len", help="Training context length L.")] = "4096",
    n: NOpt = "131072",
    law: Annotated[str | None, typer.Option("--law", help="Key law giving the head's score tail.")] = None,
    d: DimOpt = 64,
    gamma: Annotated[float | None, typer.Option("--gamma", help="Tail exponent (instead of --law).")] = None,
    tail_kappa: Annotated[float, typer.Option("--tail-kappa", help="Tail prefactor with --gamma.")] = 1.0,
    base_beta: Annotated[
        float | None, typer.Option("--base-beta", help="The head's beta at L (default beta*(L): critical at L).")
    ] = None,
    kappa: KappaOpt = 10.0,
    subdim: SubdimOpt = 2,
    eta: EtaOpt = 1.0,
    query_cos: QueryCosOpt = 1.0,
    sigma: SigmaOpt = 1.0,
    as_json: JsonOpt = False,
) -> None:
    """The beta_n rules used in practice (YaRN, log-n, SSMax, Llama 4, ...) and the regime each puts a head in."""
    from .schedules import schedules_summary
    from .tails import ScoreTail, critical_beta

    if law is not None and gamma is not None:
        raise UsageError("--law/--gamma: give the tail by a key law or by --gamma, not both")
    tail = None
    if law is not None:
        key_law, q = _law_spec(law, d, kappa, subdim, eta, query_cos, sigma).build()
        tail = key_law.score_tail(q)
    elif gamma is not None:
        tail = ScoreTail(1.0, check_positive(gamma, "--gamma"), check_positive(tail_kappa, "--tail-kappa"))
    length = check_int(train_len, "--train-len", minimum=2)
    if base_beta is None:
        base = critical_beta(length, tail) if tail is not None else 1.0
    else:
        base = check_beta(base_beta, "--base-beta")
    payload = schedules_summary(length, check_n(n, "--n"), tail, base)
    if as_json:
        _emit(payload, True, "")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"attnscale schedules: L={length}, n={payload['n']:.3g}, beta(L)={base:.4g}")
    for col in ("rule", "multiplier", "c", "regime"):
        table.add_column(col, justify="right" if col != "rule" else "left")
    for row in payload["rules"]:
        c = "-" if row["c"] is None else f"{row['c']:.4g}"
        table.add_row(row["name"], f"{row['multiplier']:.4g}", c, row["regime"] or "-")
    Console().print(table)


@app.command()
def probe(
    quick: Annotated[bool, typer.Option("--quick", help="Fewer texts and tokens: about a minute.")] = False,
    texts: Annotated[Path | None, typer.Option("--texts", help="A folder of .txt files (default: the stdlib's docstrings).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the text selection and intervals.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Probe a real pretrained transformer (all-MiniLM-L6-v2, offline): every head's score tail and regime per rule."""
    if texts is not None and not texts.is_dir():
        raise UsageError(f"--texts: got {str(texts)!r}; expected a folder of .txt files")
    try:
        from .probe import probe_summary
    except ImportError as exc:
        raise UsageError(f"probe: needs the probe extra (pip install 'attnscale[probe]'): {exc}") from None
    payload = probe_summary(quick=quick, texts=texts, seed=check_int(seed, "--seed", minimum=0))
    if as_json:
        _emit(payload, True, "")
        return
    from rich.console import Console
    from rich.table import Table

    heads = payload["heads"]
    rules = sorted(heads[0]["c"]) if heads else []
    table = Table(title=f"attnscale probe: {payload['model']}")
    for col in ["layer", "head", "kind", "gamma", *[f"c[{r}]" for r in rules]]:
        table.add_column(col, justify="right")
    for h in heads:
        cs = [h["c"][r] for r in rules]
        table.add_row(str(h["layer"]), str(h["head"]), str(h["kind"]), _fmt(h["gamma"]), *[_fmt(v) for v in cs])
    Console().print(table)


@app.command()
def report(
    quick: Annotated[bool, typer.Option("--quick", help="Small Monte Carlo: minutes on 2 cores.")] = False,
    out: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("attnscale-report"),
    workers: Annotated[int | None, typer.Option("--workers", help="Local worker processes (default: all cores).")] = None,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="Dask scheduler address, tcp://host:port.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Root seed of every experiment.")] = 0,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Run only these experiments (repeatable).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Reproduce every claim: OUT/index.html (figures, claims table) and OUT/claims.json."""
    from .experiments import EXPERIMENTS
    from .report import build_report

    if workers is not None:
        check_int(workers, "--workers")
    if scheduler is not None and workers is not None:
        raise UsageError("--workers/--scheduler: give one of them (a Dask cluster has its own workers)")
    if scheduler is not None and not scheduler.startswith(("tcp://", "tls://", "ucx://", "inproc://")):
        raise UsageError(f"--scheduler: got {scheduler!r}; expected an address such as tcp://127.0.0.1:8786")
    for name in only or ():
        check_choice(name, "--only", EXPERIMENTS)
    summary_ = build_report(
        out,
        quick=quick,
        workers=workers,
        scheduler=scheduler,
        seed=check_int(seed, "--seed", minimum=0),
        quiet=as_json,
        command="attnscale " + " ".join(sys.argv[1:]),
        experiments=tuple(only) if only else EXPERIMENTS,
    )
    n_ok = sum(c.ok for c in summary_.claims)
    payload = {
        "out": str(summary_.out),
        "index": str(summary_.out / "index.html"),
        "claims_ok": n_ok,
        "claims_total": len(summary_.claims),
        "seconds": round(summary_.seconds, 1),
        "failed": [c.claim for c in summary_.claims if not c.ok],
    }
    _emit(payload, as_json, "attnscale report")


def _law_spec(
    law: str, d: int, kappa: float, subdim: int, eta: float, query_cos: float, sigma: float = 1.0
) -> LawSpec:
    check_choice(law, "--law", LAW_NAMES)
    if d < 2:
        raise UsageError(f"--d: got {d}; expected an integer >= 2")
    return LawSpec(law, d, kappa, subdim, eta, query_cos, sigma)


def main() -> None:
    """Entry point: run the app, turning bad input into one line on stderr and exit code 2."""
    try:
        app(standalone_mode=False)
    except (ValueError, TypeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except OverflowError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # click usage errors and the like
        exceptions = _click_exceptions()
        if isinstance(exc, typer.Exit):
            sys.exit(getattr(exc, "exit_code", 0))
        if isinstance(exc, typer.Abort):
            sys.exit(130)
        if isinstance(exc, getattr(exceptions, "NoArgsIsHelpError", ())):
            exc.show()
            sys.exit(2)
        if isinstance(exc, exceptions.ClickException):
            typer.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(2)
        raise


def _click_exceptions():
    """The exceptions module of the click that typer runs on (typer >= 0.26 vendors its own)."""
    try:
        from typer._click import exceptions
    except ImportError:  # older typer: plain click
        from click import exceptions
    return exceptions


if __name__ == "__main__":  # pragma: no cover
    main()
