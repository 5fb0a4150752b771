"""attnscale: the long-context scaling theory of softmax attention, computable and checkable.

See docs/theory.md for the mathematics and docs/architecture.md for the layers.

Examples
--------
>>> import attnscale as ats
>>> law = ats.UniformSphere(3)
>>> ats.regime(10**6, 5e5, law, q=[1.0, 0.0, 0.0], size=2000).name    # the verdict of the exact law at n
'critical'
"""

from .attention import Attention, AttentionStats, AttentionStatsBatch, attention, attention_stats, attention_stats_many
from .estimate import TailEstimate, estimate_tail, estimate_tails
from .exponent import beta_half, critical_curve, exponent_curve, fit_exponent
from .finite import Regime, regime
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
from .limit_means import critical_band, limit_max_weight, limit_n_eff
from .limits import CriticalLimit, LimitDraws, mean_resultant_length
from .sampler import TopSample, choose_m, sample_top
from .tails import ScoreTail, critical_beta

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
    "critical_band",
    "critical_beta",
    "critical_curve",
    "estimate_tail",
    "estimate_tails",
    "exponent_curve",
    "fit_exponent",
    "law_from_name",
    "limit_max_weight",
    "limit_n_eff",
    "mean_resultant_length",
    "regime",
    "sample_top",
]
