"""Command-line names of the key laws and their parameters (one table, used by ``laws`` and ``cli.parsing``; imports nothing)."""

from __future__ import annotations

__all__ = ["LAW_NAMES", "LAW_PARAMS"]

#: Key-law names accepted by ``--law`` (and :func:`attnscale.laws.law_from_name`).
LAW_NAMES = ("uniform", "vmf", "subsphere", "power", "gaussian")

#: Parameters of each law, by name.
LAW_PARAMS: dict[str, tuple[str, ...]] = {
    "uniform": (),
    "vmf": ("kappa", "mu_axis"),
    "subsphere": ("m",),
    "power": ("eta",),
    "gaussian": ("sigma",),
}
