"""attnscale: the long-context scaling theory of softmax attention, computable and checkable.

See docs/theory.md for the mathematics and docs/architecture.md for the layers.

The package imports lazily (PEP 562): ``import attnscale`` loads nothing heavy, and each
public name below loads its submodule on first use, so that the command line starts fast.

Examples
--------
>>> import attnscale as ats
>>> law = ats.UniformSphere(3)
>>> ats.regime(10**6, 5e5, law, q=[1.0, 0.0, 0.0], size=2000).name    # the verdict of the exact law at n
'critical'
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

__version__ = "0.1.0"

#: Public name -> the submodule that defines it.
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(
        ("Attention", "AttentionStats", "AttentionStatsBatch", "attention", "attention_stats", "attention_stats_many"),
        "attention",
    ),
    **dict.fromkeys(("TailEstimate", "estimate_tail", "estimate_tails"), "estimate"),
    **dict.fromkeys(("beta_half", "critical_curve", "exponent_curve", "fit_exponent"), "exponent"),
    **dict.fromkeys(("Regime", "regime"), "finite"),
    **dict.fromkeys(
        (
            "Empirical",
            "GaussianKeys",
            "GreatSubsphere",
            "KeyLaw",
            "Mixture",
            "PowerDensity",
            "ScoreLaw",
            "UniformScoreLaw",
            "UniformSphere",
            "VonMisesFisher",
            "law_from_name",
        ),
        "laws",
    ),
    **dict.fromkeys(("critical_band", "limit_max_weight", "limit_n_eff"), "limit_means"),
    **dict.fromkeys(("CriticalLimit", "LimitDraws", "mean_resultant_length"), "limits"),
    **dict.fromkeys(("TopSample", "choose_m", "sample_top"), "sampler"),
    **dict.fromkeys(("ScoreTail", "critical_beta"), "tails"),
}

__all__ = sorted(_EXPORTS)

#: Public names that are also submodules (``attnscale.attention`` is the function, as it has
#: always been; the module is ``sys.modules["attnscale.attention"]``).
_SHADOWED = frozenset(name for name, module in _EXPORTS.items() if name == module)


def __getattr__(name: str) -> Any:
    """Load a public name (or a submodule) on first use and keep it."""
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f".{module}", __name__), name)
    elif not name.startswith("__") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f".{name}", __name__)  # a submodule: attnscale.laws, ...
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """The package module: importing a submodule named like a public function keeps the function.

    The import system binds ``attnscale.attention`` to the submodule once it is loaded; a name in
    ``_SHADOWED`` stays the public function of that module instead, as with an eager import.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SHADOWED and isinstance(value, types.ModuleType) and value.__name__ == f"{__name__}.{name}":
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
