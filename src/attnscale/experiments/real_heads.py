"""Real heads: the regime of every head of a pretrained transformer under the temperature rules in use.

all-MiniLM-L6-v2 (6 layers x 12 heads, trained at L = 512 positions) reads the standard library's
docstrings; hooks capture every head's queries and keys (verified against the model's own eager
attention), and each head's score tail near its top is estimated from a key pool of other texts
(:mod:`attnscale.probe`). With its inverse temperature beta and the estimated critical scale
beta*(n), each rule's multiplier m(n) (:mod:`attnscale.schedules`) puts the head at
c = beta m(n) / beta*(n) (theory sections 2 and 3). Claims: the hooked attention reproduces the
model's within 1e-5; the c of every head under each rule is the standard c times that rule's
published multiplier; the critical rule keeps every head at its training-length c; layer 0
repeats keys exactly (they depend on token and position only). The figure also shows, per rule,
how far the per-position form (query p at m(p + 1), as the models apply it) and the
one-multiplier form (every query at m(n)) put a head apart in a causal context of n tokens, and,
for a causal model, the real-n curve of the probe (c of queries that really see n keys).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from ..corpus import stdlib_corpus
from ..probe import PROBE_NS, load_model, probe, probe_config
from ..schedules import RULES, rule_multipliers
from ..tails import CRITICAL_BAND
from ._claims import Claim
from ._protocol import Config, reduce  # reduce: the default, a concatenation

if TYPE_CHECKING:
    from matplotlib.figure import Figure


NAME = "real_heads"
TITLE = "Real heads: regimes of all-MiniLM-L6-v2's heads under YaRN, log-n, entropy, SSMax, Llama 4 and critical rules"
SECTION = "2, 3"
#: Statement id (experiments.STATEMENTS) of every claim here.
STATEMENT = "X3"
WHAT_TO_SEE = (
    "left: each head's c (log scale, red supercritical, blue subcritical) under each rule at 4k, 128k, 1M "
    "tokens; right: the median head's c(n) per rule against the critical band (grey)."
)

#: Largest deviation of hooked from eager attention probabilities accepted (float32 model).
REPRODUCTION_TOL = 1e-5
#: Relative tolerance of a ratio of two float64 c values against a closed-form multiplier.
RATIO_TOL = 1e-9
#: Context lengths of the heat maps.
HEATMAP_NS = (4096, 131072, 1048576)
#: ``rule`` value of the real-n curve's rows (causal models): c of queries that see n keys.
REAL_N = "real_n"
#: Key counts sampled (evenly in 2..n) to compare the per-position and one-multiplier forms.
GAP_POSITIONS = 512


def config(quick: bool, seed: int) -> Config:
    """Quick: 96 texts of <= 128 tokens, 8 queries a head; full: 384 texts of <= 256 tokens, 32 queries.

    Two tasks (layers 0-2 and 3-5), each running the corpus through the model once."""
    base = probe_config(quick, seed)
    curve = [int(round(x)) for x in np.logspace(2.0, 7.0, 11 if quick else 26)]
    return Config(
        {
            "seed": seed,
            "texts": base["texts"],
            "max_length": base["max_length"],
            "queries_per_head": base["queries_per_head"],
            "ns": sorted(set(curve) | set(PROBE_NS)),
            "layer_groups": [[0, 1, 2], [3, 4, 5]],
        }
    )


def task(cfg: dict, seed: np.random.SeedSequence) -> pa.Table:
    """Probe the layers of one group; one row per (layer, head, rule, n)."""
    corpus = stdlib_corpus(count=cfg["texts"])
    out = probe(
        texts=corpus,
        seed=int(seed.generate_state(1)[0]),
        layers=cfg["layers"],
        config={"max_length": cfg["max_length"], "queries_per_head": cfg["queries_per_head"], "ns": cfg["ns"]},
        model=load_model(),
    )
    return table_from_probe(out)


def table_from_probe(out: dict) -> pa.Table:
    """The tidy table of a :func:`attnscale.probe.probe` result: one row per (layer, head, rule, n).

    A causal model's real-n curve adds rows with ``rule = "real_n"`` (``n``: keys seen, sinks included)."""
    names = ("layer", "head", "rule", "n", "c", "c_lo", "c_hi", "regime", "kind", "gamma", "endpoint", "beta",
             "logit_scale", "duplicates", "keys", "sink_mass", "sink_margin", "reproduction_error", "train_len",
             "corpus_sha256", "regime_finite", "max_weight_finite", "part")
    cols: dict[str, list] = {k: [] for k in names}
    nan = math.nan
    for h in out["heads"]:
        err = out["reproduction_error_by_layer"][str(h["layer"])]
        for rule, row in h["c"].items():
            for n_text, c in row.items():
                lo, hi = h["c_ci"][rule][n_text] or (None, None)
                fin = (h.get("finite") or {}).get(n_text) if rule == "standard" else None
                values = (h["layer"], h["head"], rule, int(n_text), c, lo, hi, h["regime"][rule][n_text] or "",
                          h["kind"], h["gamma"], h["endpoint"], h["beta"], h["logit_scale"], h["duplicates"],
                          h["keys"], h["sink_mass"], h["sink_margin"], err, out["train_len"], out["corpus"]["sha256"],
                          fin["regime"] if fin else "", fin["max_weight"] if fin else None, fin["part"] if fin else "")
                for key, v in zip(names, values):
                    cols[key].append(nan if v is None else v)
        curve = h.get("curve") or {"n": []}
        for i, n_value in enumerate(curve["n"]):
            lo, hi = curve["c_ci"][i] or (None, None)
            values = (h["layer"], h["head"], REAL_N, int(n_value), curve["c"][i], lo, hi, "", h["kind"], h["gamma"],
                      h["endpoint"], h["beta"], h["logit_scale"], h["duplicates"], h["keys"], h["sink_mass"],
                      h["sink_margin"], err, out["train_len"], out["corpus"]["sha256"], "", None, "")
            for key, v in zip(names, values):
                cols[key].append(nan if v is None else v)
    return pa.table(cols)


def tasks(cfg: Config) -> list[dict]:
    """One task per group of layers (each loads the model and runs the corpus through it)."""
    tasks = [{k: v for k, v in cfg.items() if k != "layer_groups"} | {"layers": g} for g in cfg["layer_groups"]]
    return tasks


def _col(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table[name].to_pylist() if table[name].type == pa.string() else table[name].to_numpy())


def _head_grid(table: pa.Table, rule: str, n: int) -> np.ndarray:
    """log10 c as a (layers, heads) array (NaN where the estimator gives no c)."""
    layer, head, c = _col(table, "layer"), _col(table, "head"), _col(table, "c")
    sel = (_col(table, "rule") == rule) & (_col(table, "n") == n)
    grid = np.full((int(layer.max()) + 1, int(head.max()) + 1), np.nan)
    with np.errstate(divide="ignore"):
        grid[layer[sel], head[sel]] = np.log10(c[sel])
    return grid


def _c_at(ns: np.ndarray, c: np.ndarray, log_pos: np.ndarray, n: int) -> tuple[np.ndarray, float]:
    """A head's c(n), log-linearly interpolated in log n, at the positions' key counts and at ``n``."""
    order = np.argsort(ns)
    x, y = np.log(ns[order].astype(np.float64)), np.log(c[order])
    return np.exp(np.interp(log_pos, x, y)), math.exp(np.interp(math.log(n), x, y))


def position_gap(table: pa.Table, rule: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Per head: how far apart the per-position and the one-multiplier forms of ``rule`` put it, in a causal context of ``n`` tokens.

    Returns two arrays over the heads: the mean over query positions of
    :math:`|\log_{10}(c_\text{one} / c_\text{pos})|`, and the fraction of query positions where
    the two forms give different regimes.

    A query at position :math:`p` sees :math:`n' = p + 1` keys; under the standard rule the head
    is at :math:`c_0(n')`, interpolated log-log from the table's standard :math:`c` (clamped
    outside its lengths). Per position it runs at :math:`c_0(n')\, m(n')`, with one multiplier at
    :math:`c_0(n')\, m(n)`; for the critical rule :math:`m(n') = c_\text{crit}(n')/c_0(n')` from the
    table. Regimes as :func:`attnscale.probe.regime_name` names them, at the head's :math:`\beta m`.
    ``GAP_POSITIONS`` key counts :math:`n'`, evenly spaced in :math:`2..n` (each stands for the
    same number of queries; a query that sees one key gives it weight 1 whatever :math:`m`). NaN
    for a head without a finite standard :math:`c`.
    """
    layer, head, rule_col, ns, c, beta = (_col(table, k) for k in ("layer", "head", "rule", "n", "c", "beta"))
    L = int(_col(table, "train_len")[0])
    positions = np.unique(np.linspace(2, n, GAP_POSITIONS).round().astype(np.int64))
    log_pos = np.log(positions.astype(np.float64))
    m_pos = m_n = None
    if rule != "critical":
        m_pos = rule_multipliers(rule, positions, L)
        m_n = float(rule_multipliers(rule, [n], L)[0])
    needed = ("standard", "critical") if rule == "critical" else ("standard",)
    out, gap = [], []
    for a, b in sorted(set(zip(layer.tolist(), head.tolist()))):
        mine = (layer == a) & (head == b)
        usable = {r: mine & (rule_col == r) & np.isfinite(c) & (c > 0) for r in needed}
        if any(sel.sum() < 2 for sel in usable.values()):
            out.append(np.nan)
            gap.append(np.nan)
            continue
        std = usable["standard"]
        c0, c0_n = _c_at(ns[std], c[std], log_pos, n)
        if rule == "critical":
            crit = usable["critical"]
            cc, cc_n = _c_at(ns[crit], c[crit], log_pos, n)
            m_pos_h, m_n_h = cc / c0, cc_n / c0_n
        else:
            m_pos_h, m_n_h = m_pos, m_n
        b0 = float(np.median(beta[std]))
        per_pos = _regimes(b0 * np.asarray(m_pos_h), c0 * m_pos_h)
        one = _regimes(np.full(c0.shape, b0 * m_n_h), c0 * m_n_h)
        out.append(float(np.mean(per_pos != one)))
        gap.append(float(np.mean(np.abs(np.log10(m_n_h / np.asarray(m_pos_h, dtype=np.float64))))))
    return np.array(gap), np.array(out)


def _regimes(beta: np.ndarray, c: np.ndarray) -> np.ndarray:
    """:func:`attnscale.probe.regime_name` elementwise, as codes 0 global, 1 sub-, 2 critical, 3 supercritical."""
    return np.select([beta <= 1.0, c < CRITICAL_BAND[0], c > CRITICAL_BAND[1]], [0, 1, 3], default=2)


def _curve_axes(ax, table: pa.Table) -> None:
    """The real-n curve (median head, IQR) if the table has one, else a note."""
    sel = _col(table, "rule") == REAL_N
    if not sel.any() or not np.isfinite(_col(table, "c")[sel]).any():
        ax.text(0.5, 0.5, "real-n curve: for causal models\n(attnscale probe --model DIR);\n"
                "an encoder's queries see their whole text", ha="center", va="center", fontsize=9,
                transform=ax.transAxes)
        ax.set_axis_off()
        return
    n_all, c_all = _col(table, "n"), _col(table, "c")
    keep = sel & np.isfinite(c_all) & (c_all > 0)
    ns = np.unique(n_all[keep])
    med = [np.median(c_all[keep & (n_all == n)]) for n in ns]
    q1 = [np.quantile(c_all[keep & (n_all == n)], 0.25) for n in ns]
    q3 = [np.quantile(c_all[keep & (n_all == n)], 0.75) for n in ns]
    ax.plot(ns, med, "o-", color="k", label="median head")
    ax.fill_between(ns, q1, q3, color="k", alpha=0.1, label="IQR over heads")
    ax.axhspan(*CRITICAL_BAND, color="0.9", zorder=0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("keys the query sees, n")
    ax.set_ylabel("c (real context)")
    ax.set_title("real-n curve: c of queries at position n - 1", fontsize=10)
    ax.legend(fontsize=8)


def figure(table: pa.Table) -> Figure:
    """Heat maps of log10 c (layers x heads) per rule at 4k, 128k, 1M; c(n) of each rule vs the critical band."""
    import matplotlib
    from matplotlib.colors import BoundaryNorm
    from matplotlib.figure import Figure

    rules = [r for r in RULES if r in set(_col(table, "rule"))]
    fig = Figure(figsize=(18, 1.9 * len(rules) + 1.5))
    left, right = fig.subfigures(1, 2, width_ratios=[1.35, 1.0], wspace=0.02)
    axes = left.subplots(len(rules), len(HEATMAP_NS), squeeze=False, sharex=True, sharey=True)
    bounds = [-4, -3, -2, -1, -0.5, 0, 0.5, 1, 2, 3, 4]
    norm = BoundaryNorm(bounds, matplotlib.colormaps["RdBu_r"].N)
    image = None
    for i, rule in enumerate(rules):
        for j, n in enumerate(HEATMAP_NS):
            ax = axes[i, j]
            image = ax.imshow(_head_grid(table, rule, n), cmap="RdBu_r", norm=norm, aspect="auto")
            ax.set_xticks(range(0, 12, 2))
            ax.set_yticks(range(6))
            ax.tick_params(labelsize=7)
            if i == 0:
                ax.set_title(f"n = {n:,}", fontsize=10)
            if j == 0:
                ax.set_ylabel(f"{rule}\nlayer", fontsize=9)
            if i == len(rules) - 1:
                ax.set_xlabel("head", fontsize=8)
    bar = left.colorbar(image, ax=axes, orientation="horizontal", ticks=bounds, fraction=0.03, pad=0.06, aspect=60)
    bar.set_label("log10 c per head (critical band: -1 .. 1; blue: subcritical, red: supercritical)")
    ax, gap_ax, curve_ax = right.subplots(3, 1, gridspec_kw={"height_ratios": [2.2, 1.0, 1.0], "hspace": 0.55})
    gap_rules = [r for r in rules if r != "standard"]
    width = 0.8 / len(HEATMAP_NS)
    for j, n in enumerate(HEATMAP_NS):
        gaps, shares = [], []
        for rule in gap_rules:
            g, f = position_gap(table, rule, n)
            gaps.append(float(np.nanmedian(g)) if np.isfinite(g).any() else np.nan)
            shares.append(float(np.nanmedian(f)) if np.isfinite(f).any() else np.nan)
        x = np.arange(len(gap_rules)) + (j - 1) * width
        gap_ax.bar(x, gaps, width, label=f"n = {n:,}")
        for xi, g, f in zip(x, gaps, shares):
            if np.isfinite(g) and np.isfinite(f):
                gap_ax.text(xi, g, f"{100 * f:.0f}%", ha="center", va="bottom", fontsize=6)
    gap_ax.set_xticks(range(len(gap_rules)))
    gap_ax.set_xticklabels(gap_rules, fontsize=8)
    gap_ax.set_ylabel("mean |log10 c_one / c_pos|", fontsize=8)
    gap_ax.set_title("per-position m(p+1) vs one multiplier m(n), causal context of n: median head\n"
                     "(labels: share of positions in another regime)", fontsize=9)
    gap_ax.legend(fontsize=7)
    _curve_axes(curve_ax, table)
    n_all, rule_all, c_all = _col(table, "n"), _col(table, "rule"), _col(table, "c")
    ns = np.unique(n_all)
    for k, rule in enumerate(rules):
        med, q1, q3 = [], [], []
        for n in ns:
            c = c_all[(rule_all == rule) & (n_all == n)]
            c = c[np.isfinite(c)]
            med.append(np.median(c) if c.size else np.nan)
            q1.append(np.quantile(c, 0.25) if c.size else np.nan)
            q3.append(np.quantile(c, 0.75) if c.size else np.nan)
        color = f"C{k}"
        ax.plot(ns, med, color=color, lw=2, label=rule, ls="--" if rule == "ssmax" else "-")
        ax.fill_between(ns, q1, q3, color=color, alpha=0.1)
    ax.axhspan(*CRITICAL_BAND, color="0.9", zorder=0, label="critical band")
    ax.axvline(int(_col(table, "train_len")[0]), color="k", ls=":", lw=1, label="training length L")
    ax.set_xscale("log")
    ax.set_yscale("log")
    finite = c_all[np.isfinite(c_all) & (c_all > 0)]
    ax.set_ylim(min(1e-2, float(finite.min()) if finite.size else 1e-2), max(1e2, float(finite.max()) if finite.size else 1e2))
    ax.set(xlabel="context length n", ylabel="c = beta m(n) / beta*(n): median head, IQR over heads", title="c(n) under each rule (entropy = ssmax with s = 1/ln L at L = 512)")
    ax.legend(fontsize=8, loc="lower left")
    return fig


def _published_multiplier(rule: str, n: int, L: int) -> float:
    """The rules' formulas as published, written out here independently of attnscale.schedules."""
    if rule == "standard":
        return 1.0
    if rule == "yarn":  # Peng et al. 2023: sqrt(1/t) = 0.1 ln s + 1, s = n / L, on cos and sin
        return (0.1 * math.log(n / L) + 1.0) ** 2 if n > L else 1.0
    if rule == "logn":  # Qwen: log_L(n) beyond L
        return math.log(n, L) if n > L else 1.0
    if rule == "entropy":  # Su 2021: log_512(n)
        return math.log(n, 512)
    if rule == "ssmax":  # Nakanishi 2025: s ln n, with s = 1 / ln L
        return math.log(n) / math.log(L)
    if rule == "llama4":  # Llama 4: log(floor(n / 8192) + 1) * 0.1 + 1
        return math.log(math.floor(n / 8192) + 1.0) * 0.1 + 1.0
    raise ValueError(f"rule: got {rule!r}; no closed form here")


def tables(table: pa.Table) -> list[tuple[str, list[str], list[list[str]]]]:
    """Heads by regime at each n under the standard rule: the exact law's verdict against the asymptotic band's."""
    rule, n_all = _col(table, "rule"), _col(table, "n")
    sel = rule == "standard"
    cells = []
    names = ("subcritical", "critical", "supercritical", "global")
    for n in sorted(set(n_all[sel].tolist())):
        at = sel & (n_all == n)
        fin, asym = _col(table, "regime_finite")[at], _col(table, "regime")[at]
        if not np.any(fin != ""):
            continue  # no finite-n verdict at this n (the probe judges its four lengths only)
        part = str(next((p for p in _col(table, "part")[at] if p), ""))
        cells.append([f"{int(n)}", part] + [f"{int(np.sum(fin == r))} / {int(np.sum(asym == r))}" for r in names]
                     + [f"{int(np.sum(fin == ''))}"])
    cols = ["n", "law at n", *(f"{r}: exact law / band on c" for r in names), "no Weibull query"]
    return [("Heads by regime, standard rule: the verdict of each head's exact law at n (docs/theory.md section 7) "
             "against the fixed band on the asymptotic c", cols, cells)]


def claims(table: pa.Table) -> list[Claim]:
    """Reproduction of eager attention; c ratios vs the published multipliers; critical rule; layer-0 duplicates."""
    claims = []
    err = float(np.max(_col(table, "reproduction_error")))
    claims.append(Claim.within(
        "hooked q, k give softmax(q k^T / sqrt(d_h) + mask) equal to MiniLM's eager attention probabilities",
        theory=0.0, measured=err, half_width=REPRODUCTION_TOL, section="1", experiment=NAME,
        note="max |difference| over every layer, head and real query row; float32 model",
    ))
    layer, head, rule, n, c = (_col(table, k) for k in ("layer", "head", "rule", "n", "c"))
    L = int(_col(table, "train_len")[0])
    key = {(a, b, d): v for a, b, r, d, v in zip(layer, head, rule, n, c) if r == "standard"}
    for name in [r for r in RULES if r not in ("standard", "critical") and r in set(rule)]:
        devs = []
        for a, b, r, d, v in zip(layer, head, rule, n, c):
            base = key.get((a, b, d), math.nan)
            if r == name and math.isfinite(v) and math.isfinite(base) and base > 0:
                devs.append(abs(v / base / _published_multiplier(name, int(d), L) - 1.0))
        claims.append(Claim.within(
            f"every head's c under {name} is its standard c times the published multiplier m(n)",
            theory=0.0, measured=float(max(devs)) if devs else math.nan, half_width=RATIO_TOL, section="2",
            experiment=NAME, note=f"max relative deviation over {len(devs)} (head, n) pairs; L = {L}",
        ))
    crit = rule == "critical"
    spread = []
    for a, b in set(zip(layer[crit], head[crit])):
        v = c[crit & (layer == a) & (head == b)]
        v = v[np.isfinite(v)]
        if v.size:
            spread.append(float(v.max() / v.min() - 1.0))
    claims.append(Claim.within(
        "the critical rule beta*(n)/beta*(L) keeps every head at its training-length c for all n",
        theory=0.0, measured=max(spread) if spread else math.nan, half_width=RATIO_TOL, section="2",
        experiment=NAME, note=f"max relative spread of c over n, {len(spread)} heads",
    ))
    dup = _col(table, "duplicates")
    first = layer == 0
    claims.append(Claim.at_least(
        "layer 0 keys repeat exactly across texts (they depend on token and position only)",
        bound=1.0, measured=float(dup[first].min()) if first.any() else math.nan, half_width=0.0, section="2",
        experiment=NAME, note="fewest exact duplicate keys removed from a layer-0 head's pool",
    ))
    return claims
