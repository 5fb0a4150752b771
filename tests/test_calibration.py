"""Tests of experiments/calibration.py: the tail estimator's calibration harness on exact laws.

Coverage assertions are binomial, with 4 standard errors of the nominal level as tolerance.
"""

from __future__ import annotations

import math

import pytest

from attnscale.experiments.calibration import CALIBRATION_CASES, calibration_case, calibration_table

LEVEL = 0.95


def min_coverage(reps: int, level: float = LEVEL) -> float:
    """Nominal level minus 4 binomial standard errors."""
    return level - 4.0 * math.sqrt(level * (1 - level) / reps)


@pytest.mark.parametrize("name", ["uniform d=3", "power density d=3, eta=2"])
def test_coverage_on_exact_laws_light(name):
    """A light version of the calibration table: 60 replications."""
    row = calibration_case(name, reps=60, rng=2)
    lo = min_coverage(60)
    assert row["kind_rate"] >= lo
    assert row["cover_gamma"] >= lo and row["cover_endpoint"] >= lo and row["cover_beta"] >= lo


def test_gaussian_critical_scale_coverage_light():
    """Gumbel class: the hazard-scale interval covers the exact a_N (GaussianScoreLaw.critical_beta)."""
    row = calibration_case("Gaussian", reps=60, rng=3)
    assert row["cover_beta"] >= min_coverage(60)


def test_calibration_cases():
    assert set(CALIBRATION_CASES) >= {"uniform d=3", "uniform d=9", "uniform d=33", "Gaussian"}


def test_unknown_case_names_the_argument():
    with pytest.raises(ValueError, match="name"):
        calibration_case("nope")


def test_table_row_per_case():
    assert [r["case"] for r in calibration_table(["power density d=3, eta=2"], reps=5)] == ["power density d=3, eta=2"]
