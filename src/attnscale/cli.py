"""Command line: ``attnscale critical | simulate | exponent``.

Every command prints a human table by default and one JSON object with
``--json``.  Bad input (an :class:`attnscale._validate.InputError` or a usage
error of click) becomes one line on stderr and exit code 2; any other exception
is a bug: one line naming its type and message, exit code 1, and the traceback
only with ``ATTNSCALE_DEBUG=1`` (DESIGN.md, "Command line").
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from ._validate import InputError, check_beta, check_choice, check_int, check_n, check_positive
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


class UsageError(InputError):
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


#: Environment variable naming the cache of finished verdicts (default ~/.cache/attnscale).
CACHE_ENV = "ATTNSCALE_CACHE"

NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Recompute instead of reading the cache of earlier calls.")]


def _cache_store():
    """The results store that caches finished verdicts and curves across calls."""
    import os

    from .store import ResultStore

    root = os.environ.get(CACHE_ENV) or str(Path.home() / ".cache" / "attnscale")
    return ResultStore(root)


def _cached(name: str, config: dict[str, Any], compute, use_cache: bool = True) -> dict[str, Any]:
    """``compute()``'s JSON payload, read from the cache when this exact call was made before.

    The key hashes the command, its arguments and the package version (store.task_key), so a
    changed argument or a new version recomputes; the payload is kept as one JSON string.
    """
    import pyarrow as pa

    from . import __version__
    from .store import task_key

    if not use_cache:
        return compute()
    full = {**config, "version": __version__}
    store = _cache_store()
    key = task_key(full, name=name)
    if store.has(key):
        return json.loads(store.load(key)["payload"][0].as_py())
    payload = _finite_or_none(compute())
    store.save(key, pa.table({"payload": [json.dumps(payload, allow_nan=False)]}), full)
    return payload


def _flatten(payload: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Rows of the human table: nested dicts become dotted names, lists a row count."""
    rows: list[tuple[str, str]] = []
    for key, value in payload.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and all(not isinstance(v, (dict, list)) for v in value.values()):
            rows.append((name, "  ".join(f"{k}={_fmt(v)}" for k, v in value.items())))
        elif isinstance(value, dict):
            rows.extend(_flatten(value, f"{name}.") if value else [(name, "-")])
        elif isinstance(value, list) and all(isinstance(v, (int, float, str)) or v is None for v in value):
            rows.append((name, "  ".join(_fmt(v) for v in value)))
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
    with np.errstate(invalid="ignore"):  # infinite draws (n_eff of a degenerate limit): inf or nan, shown as null
        se = float(np.std(x, ddof=1) / math.sqrt(x.size)) if x.size > 1 else 0.0
        q05, q50, q95 = np.quantile(x, [0.05, 0.5, 0.95])
    return {"mean": float(np.mean(x)), "se": se, "q05": float(q05), "q50": float(q50), "q95": float(q95)}


@app.command()
def critical(
    law: LawOpt = "uniform",
    d: DimOpt = 3,
    n: NOpt = "1e6",
    beta: Annotated[float | None, typer.Option("--beta", help="Inverse temperature (gives the regime).")] = None,
    size: Annotated[int, typer.Option("--size", help="Draws of the exact sampler behind the verdict.")] = 20000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the draws.")] = 0,
    kappa: KappaOpt = 10.0,
    subdim: SubdimOpt = 2,
    eta: EtaOpt = 1.0,
    query_cos: QueryCosOpt = 1.0,
    sigma: SigmaOpt = 1.0,
    no_cache: NoCacheOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Critical scale of a key law, and the regime of (n, beta) from the exact law at this n (theory section 7).

    The verdict comes from the law of the weights at this n (c_eff, regime); the
    asymptotic c = beta / beta*(n) and its verdict stand beside it.
    """
    from .finite import regime
    from .limit_means import critical_band
    from .tails import critical_beta

    spec = _law_spec(law, d, kappa, subdim, eta, query_cos, sigma)
    key_law, q = spec.build()
    n_int = check_n(n, "--n")
    size = check_int(size, "--size", minimum=2)
    seed = check_int(seed, "--seed", minimum=0)
    b = None if beta is None else check_beta(beta, "--beta")
    tail = key_law.score_tail(q)

    def compute() -> dict[str, Any]:
        band = critical_band(tail.gamma if tail.kind == "weibull" else 1.0, tail.kind)
        payload: dict[str, Any] = {
            "law": spec.name,
            "d": spec.d,
            "n": n_int,
            "endpoint": tail.endpoint,
            "gamma": tail.gamma,
            "kappa": tail.kappa if tail.kappa_is_finite else None,
            "log_kappa": tail.log_kappa,
            "kind": tail.kind,
            "beta_star": critical_beta(n_int, tail),
            "critical_band_c": list(band),
        }
        if not tail.kappa_is_finite:
            payload["note"] = f"kappa = exp({tail.log_kappa:.6g}) is beyond the float64 range; see log_kappa"
        if b is not None:
            payload.update(_verdict_payload(regime(n_int, b, key_law, q=q, size=size, rng=seed)))
        return payload

    config = {"law": dataclasses.asdict(spec), "n": n_int, "beta": b, "size": size, "seed": seed}
    _emit(_cached("critical", config, compute, not no_cache), as_json, "attnscale critical")


def _verdict_payload(reg) -> dict[str, Any]:
    """The verdict keys of ``critical --json``."""
    return {
        "beta": reg.beta,
        "regime": reg.name,
        "c_eff": reg.c_eff,
        "c_eff_interval": [reg.c_eff_low, reg.c_eff_high],
        "c_asymptotic": reg.c_asymptotic,
        "regime_asymptotic": reg.regime_asymptotic,
        "asymptotics_reached": reg.asymptotics_reached,
        "max_weight": {"mean": reg.max_weight, "se": reg.max_weight_se},
        "n_eff": {"mean": reg.n_eff, "se": reg.n_eff_se},
        "entropy": {"mean": reg.entropy, "se": reg.entropy_se},
        "m": reg.m,
        "size": reg.size,
    }


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
    no_cache: NoCacheOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Exact finite-n critical curve beta_half(n) and its fitted exponent (theory section 5)."""
    from .exponent import exponent_curve

    spec = _law_spec(law, d, kappa, subdim, eta, query_cos, sigma)
    key_law, q = spec.build()
    args = (
        check_n(n_min, "--n-min"),
        check_n(n_max, "--n-max"),
        check_int(points, "--points", minimum=4),
        check_int(size, "--size"),
        check_int(seed, "--seed", minimum=0),
    )
    config = {"law": dataclasses.asdict(spec), "args": list(args)}
    payload = _cached("exponent", config, lambda: exponent_curve(key_law, None, *args, q=q).to_dict(), not no_cache)
    if as_json:
        _emit(payload, True, "")
        return
    _emit({k: v for k, v in payload.items() if k != "table"}, False, "attnscale exponent")
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"critical curve (limit slope 1/gamma = {payload['target']:.4g})")
    for col in ("n", "beta_half", "beta_half / beta*(n)", "local slope", "log-n rule 1/ln n"):
        table.add_column(col, justify="right")
    for row in payload["table"]:
        table.add_row(
            f"{row['n']:.3g}",
            f"{row['beta_half']:.6g}",
            _fmt(row["beta_half_over_beta_star"]),
            _fmt(row["local_slope"]),
            f"{row['log_n_slope']:.4g}",
        )
    console = Console()
    console.print(table)
    if payload["warning"]:
        console.print(f"[bold]warning:[/bold] {payload['warning']}")


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
    beta: Annotated[
        float | None,
        typer.Option("--beta", help="The head's beta: adds the finite-n verdict at each --n (measured or extrapolated)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Estimate the score tail (endpoint, gamma, kind) from data, and beta*(n) with its interval (section 2).

    With --beta, the regime of the head at each --n from its own law: the observed scores below the
    splice and the estimated power tail above (theory section 7), with the interval that the tail
    estimate gives, and whether n lies beyond the observed scores (extrapolated).
    """
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
    if beta is not None:
        payload["verdicts"] = _head_verdicts(scores, query, keys, ns, check_beta(beta, "--beta"), total, level, seed)
    _emit(payload, as_json, "attnscale estimate")


def _head_verdicts(scores, query, keys, ns, beta, total, level, seed) -> list[dict[str, Any]]:
    """head_regime at each n for one query's scores (the --beta option of estimate)."""
    from .finite import head_regime

    if not ns:
        raise UsageError("--n: required with --beta (the context lengths to judge)")
    if total is not None:
        raise UsageError("--n-total: the verdict needs every observed score, not the top of a larger population")
    if scores is not None:
        values = _load_array(scores, "--scores")
    else:
        q = _load_array(query, "--query")
        if q.ndim != 1:
            raise UsageError(f"--query: got shape {q.shape}; --beta judges one query, shape (d,)")
        values = _load_array(keys, "--keys") @ q
    return [head_regime(values, n_i, beta, level=level, rng=seed).to_dict() for n_i in ns]


@app.command()
def schedules(
    train_len: Annotated[str, typer.Option("--train-len", help="Training context length L.")] = "4096",
    n: NOpt = "131072",
    law: Annotated[str | None, typer.Option("--law", help="Key law giving the head's score tail.")] = None,
    d: DimOpt = 64,
    gamma: Annotated[float | None, typer.Option("--gamma", help="Tail exponent (instead of --law).")] = None,
    tail_kappa: Annotated[float, typer.Option("--tail-kappa", help="Tail prefactor with --gamma.")] = 1.0,
    base_beta: Annotated[
        float | None, typer.Option("--base-beta", help="The head's beta at L (default: critical at L, beta_half(L) with --law).")
    ] = None,
    kappa: KappaOpt = 10.0,
    subdim: SubdimOpt = 2,
    eta: EtaOpt = 1.0,
    query_cos: QueryCosOpt = 1.0,
    sigma: SigmaOpt = 1.0,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="A rule's parameter RULE.NAME=VALUE, repeatable: yarn.factor=40, qwen_logn.seq_length=4096."),
    ] = None,
    no_cache: NoCacheOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """The beta_n rules used in practice (YaRN, log-n, SSMax, Llama 4, Qwen, Grok, ...) and the regime each puts a head in.

    With --law the verdicts come from the head's exact law at n (theory section 7), the critical rule
    is the finite-n beta_half(n)/beta_half(L), and --base-beta defaults to beta_half(L). With --gamma
    only the asymptotic readings (c, critical_asymptotic) are available.
    """
    from .schedules import schedules_summary
    from .tails import ScoreTail

    if law is not None and gamma is not None:
        raise UsageError("--law/--gamma: give the tail by a key law or by --gamma, not both")
    head = None
    spec = None
    if law is not None:
        spec = _law_spec(law, d, kappa, subdim, eta, query_cos, sigma)
        key_law, q = spec.build()
        head = key_law.score_law(q)
    elif gamma is not None:
        head = ScoreTail(1.0, check_positive(gamma, "--gamma"), check_positive(tail_kappa, "--tail-kappa"))
    length = check_int(train_len, "--train-len", minimum=2)
    base = None if base_beta is None else check_beta(base_beta, "--base-beta")
    params = _rule_params(param or [])
    n_int = check_n(n, "--n")
    config = {"train_len": length, "n": n_int, "law": None if spec is None else dataclasses.asdict(spec),
              "gamma": gamma, "tail_kappa": tail_kappa, "base_beta": base, "params": params}
    payload = _cached("schedules", config, lambda: schedules_summary(length, n_int, head, base, params=params), not no_cache)
    if as_json:
        _emit(payload, True, "")
        return
    from rich.console import Console
    from rich.table import Table

    title = f"attnscale schedules: L={length}, n={payload['n']:.3g}, beta(L)={payload['base_beta']:.4g}"
    table = Table(title=title)
    cols = ("rule", "multiplier", "regime", "c_eff", "max_weight", "c_asymptotic", "regime_asymptotic")
    for col in cols:
        table.add_column(col, justify="right" if col != "rule" else "left")
    for row in payload["rules"]:
        table.add_row(row["name"], *(_fmt(row[c]) if row[c] is not None else "-" for c in cols[1:]))
    Console().print(table)


def _rule_params(items: list[str]) -> dict[str, dict[str, float | int]]:
    """``["yarn.factor=40", ...]`` -> ``{"yarn": {"factor": 40}}``; integers stay integers."""
    out: dict[str, dict[str, float | int]] = {}
    for item in items:
        rule, dot, rest = item.partition(".")
        name, eq, text = rest.partition("=")
        if not (dot and eq and rule and name and text):
            raise UsageError(f"--param: got {item!r}; expected RULE.NAME=VALUE, e.g. yarn.factor=40")
        try:
            value: float | int = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise UsageError(f"--param: got {item!r}; the value must be a number") from None
        out.setdefault(rule, {})[name] = value
    return out


@app.command()
def probe(
    quick: Annotated[bool, typer.Option("--quick", help="Fewer texts and tokens: about a minute.")] = False,
    texts: Annotated[Path | None, typer.Option("--texts", help="A folder of .txt files (default: the stdlib's docstrings).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the text selection and intervals.")] = 0,
    model: Annotated[
        Path | None, typer.Option("--model", help="A local Hugging Face model folder (default: all-MiniLM-L6-v2).")
    ] = None,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda[:k]: where the model runs.")] = "cpu",
    max_length: Annotated[
        int | None, typer.Option("--max-length", help="Tokens per text (default 128 quick, 256 full).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Probe a real pretrained transformer (all-MiniLM-L6-v2 or --model DIR, offline): every head's score tail and regime per rule."""
    if texts is not None and not texts.is_dir():
        raise UsageError(f"--texts: got {str(texts)!r}; expected a folder of .txt files")
    if model is not None and not (model / "config.json").is_file():
        raise UsageError(f"--model: got {str(model)!r}; expected a Hugging Face model folder with a config.json")
    if not (device == "cpu" or device.startswith("cuda")):
        raise UsageError(f"--device: got {device!r}; expected cpu or cuda[:k]")
    length = None if max_length is None else check_int(max_length, "--max-length", minimum=2)
    try:
        from .probe import probe_summary
    except ImportError as exc:
        raise UsageError(f"probe: needs the probe extra (pip install 'attnscale[probe]'): {exc}") from None
    payload = probe_summary(quick=quick, texts=texts, seed=check_int(seed, "--seed", minimum=0), path=model,
                            device=device, max_length=length)
    if as_json:
        _emit(payload, True, "")
        return
    from rich.console import Console
    from rich.table import Table

    heads = payload["heads"]
    rules = list(heads[0]["c"]) if heads else []
    ns = list(heads[0]["c"][rules[0]]) if rules else []
    n_show = "131072" if "131072" in ns else (ns[-1] if ns else "")
    curve = payload.get("causal") and heads and heads[0].get("curve")
    title = f"attnscale probe: {payload['model']} (c at n = {n_show}"
    title += f"; c_real at n = {heads[0]['curve']['n'][-1]}, the longest real context)" if curve else ")"
    table = Table(title=title)
    for col in ["layer", "head", "kind", "gamma", *rules, *(["c_real"] if curve else [])]:
        table.add_column(col, justify="right")
    for h in heads:
        cs = [h["c"][r].get(n_show) for r in rules]
        extra = [_fmt(h["curve"]["c"][-1])] if curve else []
        table.add_row(str(h["layer"]), str(h["head"]), str(h["kind"]), _fmt(h["gamma"]), *[_fmt(v) for v in cs], *extra)
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
    """Entry point: bad input becomes one line on stderr and exit code 2, a bug one line and exit code 1."""
    try:
        app(standalone_mode=False)
    except InputError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # click usage errors, and bugs
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
        _internal_error(exc)


def _internal_error(exc: BaseException) -> None:
    """Report an exception that is not about the input: a bug (exit 1; traceback with ATTNSCALE_DEBUG=1)."""
    if os.environ.get("ATTNSCALE_DEBUG", "") not in ("", "0"):
        import traceback

        traceback.print_exception(exc)
    message = " ".join(str(exc).split())
    typer.echo(
        f"internal error (a bug in attnscale, please report it): {type(exc).__name__}: {message} "
        "(set ATTNSCALE_DEBUG=1 for the traceback)",
        err=True,
    )
    sys.exit(1)


def _click_exceptions():
    """The exceptions module of the click that typer runs on (typer >= 0.26 vendors its own)."""
    try:
        from typer._click import exceptions
    except ImportError:  # older typer: plain click
        from click import exceptions
    return exceptions


if __name__ == "__main__":  # pragma: no cover
    main()
