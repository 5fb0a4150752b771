"""Reading the command line's strings: counts such as ``1e6``, law and rule specs, arrays.

The only place that parses text: the library's checks (:mod:`attnscale._validate`) take
numbers.  Nothing heavy is imported at module level (the command line starts fast); the
library is loaded inside the functions that need it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import InputError

if TYPE_CHECKING:
    import numpy as np

from .._names import LAW_NAMES  # the one table (import-free: --help loads no laws)

#: Largest context length accepted anywhere (:data:`attnscale._validate.MAX_N`, checked by the tests).
MAX_N = 10**18


class UsageError(InputError):
    """Bad command-line input (reported as one line, exit code 2)."""


def parse_count(text: Any, option: str, minimum: int = 1, maximum: int | None = None) -> int:
    """An integer option as typed: ``1000000``, ``1e6``, ``1_000_000`` and ``1000000.0`` alike.

    The text becomes a number here and :func:`attnscale._validate.check_int` checks it (an
    :class:`attnscale._errors.InputError` naming ``option`` and the number read).

    Examples
    --------
    >>> parse_count("1e6", "--n"), parse_count("1_000", "--n"), parse_count("4096.0", "--train-len")
    (1000000, 1000, 4096)
    >>> parse_count("1e19", "--n", maximum=MAX_N)
    Traceback (most recent call last):
    ...
    attnscale._errors.InputError: --n: got 1e+19; expected an integer <= 1e+18
    """
    from .._validate import check_int

    if not isinstance(text, str):
        number: Any = text
    else:
        stripped = text.strip().replace("_", "")
        try:
            number = int(stripped)
        except ValueError:
            try:
                number = float(stripped)
            except ValueError:
                raise UsageError(f"{option}: got {text!r}; expected an integer such as 1000 or 1e6") from None
    return check_int(number, option, minimum=minimum, maximum=maximum)


def parse_n(text: Any, option: str = "--n") -> int:
    """A context length as typed: an integer in ``[1, 1e18]`` (:func:`parse_count`).

    Examples
    --------
    >>> parse_n("1e18")
    1000000000000000000
    """
    return parse_count(text, option, minimum=1, maximum=MAX_N)


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
        from ..laws import law_from_name

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


def law_spec(law: str, d: int, kappa: float, subdim: int, eta: float, query_cos: float, sigma: float = 1.0) -> LawSpec:
    """The :class:`LawSpec` of the ``--law``, ``--d`` and law-parameter options.

    Examples
    --------
    >>> law_spec("vmf", 3, 10.0, 2, 1.0, 1.0).name
    'vmf'
    """
    from .._validate import check_choice

    check_choice(law, "--law", LAW_NAMES)
    if d < 2:
        raise UsageError(f"--d: got {d}; expected an integer >= 2")
    return LawSpec(law, d, kappa, subdim, eta, query_cos, sigma)


def query_from_cosine(d: int, cos: float) -> np.ndarray:
    """Unit query ``cos e_1 + sqrt(1 - cos^2) e_d``.

    Examples
    --------
    >>> query_from_cosine(3, 1.0).tolist()
    [1.0, 0.0, 0.0]
    """
    import numpy as np

    if not (isinstance(cos, (int, float)) and math.isfinite(cos) and -1.0 <= cos <= 1.0):
        raise UsageError(f"--query-cos: got {cos!r}; expected a number in [-1, 1]")
    q = np.zeros(d)
    q[0] = cos
    q[-1] += math.sqrt(max(0.0, 1.0 - cos * cos))
    return q / np.linalg.norm(q)


def rule_params(items: list[str]) -> dict[str, dict[str, float | int]]:
    """``["yarn.factor=40", ...]`` -> ``{"yarn": {"factor": 40}}``; integers stay integers.

    Examples
    --------
    >>> rule_params(["yarn.factor=40", "ssmax.s=0.2"])
    {'yarn': {'factor': 40}, 'ssmax': {'s': 0.2}}
    """
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


def load_array(path: Path | None, option: str) -> np.ndarray | None:
    """The ``.npy`` array of ``option`` (``None`` when the option is not given)."""
    import numpy as np

    if path is None:
        return None
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UsageError(f"{option}: no such file {str(path)!r}") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{option}: cannot read {str(path)!r} as a .npy array ({exc})") from None
