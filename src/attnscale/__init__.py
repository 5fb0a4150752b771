"""attnscale: the long-context scaling theory of softmax attention, computable and checkable.

See docs/theory.md for the mathematics and docs/architecture.md for the layers.

Examples
--------
>>> import attnscale as ats
>>> tail = ats.UniformSphere(3).score_tail([1.0, 0.0, 0.0])
>>> ats.regime(10**6, 5e5, tail).name
'critical'
"""

from .attention import Attention, AttentionStats, AttentionStatsBatch, attention, attention_stats, attention_stats_many
from .estimate import TailEstimate, estimate_tail
from .exponent import beta_half, exponent_curve, fit_exponent
from .laws import (
    Empirical,
    GaussianKeys,
    GreatSubsphere,
    KeyLaw,
    Mixture,
    PowerDensity,
    ScoreLaw,
    UniformScoreLaw,
    UniformSphere,
    VonMisesFisher,
    law_from_name,
)
from .limits import CriticalLimit, LimitDraws, mean_resultant_length
from .sampler import TopSample, choose_m, sample_top
from .tails import Regime, ScoreTail, critical_beta, regime

__version__ = "0.1.0"

__all__ = [
    "Attention",
    "AttentionStats",
    "AttentionStatsBatch",
    "CriticalLimit",
    "Empirical",
    "GaussianKeys",
    "GreatSubsphere",
    "KeyLaw",
    "LimitDraws",
    "Mixture",
    "PowerDensity",
    "Regime",
    "ScoreLaw",
    "ScoreTail",
    "TailEstimate",
    "TopSample",
    "UniformScoreLaw",
    "UniformSphere",
    "VonMisesFisher",
    "attention",
    "attention_stats",
    "attention_stats_many",
    "beta_half",
    "choose_m",
    "critical_beta",
    "estimate_tail",
    "exponent_curve",
    "fit_exponent",
    "law_from_name",
    "mean_resultant_length",
    "regime",
    "sample_top",
]
