"""attnscale: the long-context scaling theory of softmax attention, computable and checkable.

See docs/theory.md for the mathematics and docs/architecture.md for the layers.
"""

from .laws import KeyLaw, ScoreLaw, UniformScoreLaw, UniformSphere
from .tails import Regime, ScoreTail, critical_beta, regime

__version__ = "0.1.0"

__all__ = [
    "KeyLaw",
    "Regime",
    "ScoreLaw",
    "ScoreTail",
    "UniformScoreLaw",
    "UniformSphere",
    "critical_beta",
    "regime",
]
