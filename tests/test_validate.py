"""Tests of _validate.py: the one place where arguments are checked."""

import numpy as np
import pytest

from attnscale._validate import (
    MAX_N,
    InputError,
    InputTypeError,
    as_generator,
    check_beta,
    check_int,
    check_matrix,
    check_n,
    check_on_sphere,
    check_unit_vector,
)


@pytest.mark.parametrize("value", [1e6, 1000000, np.int64(10**6), np.float64(1e6)])
def test_n_spellings_agree(value):
    assert check_n(value) == 10**6


def test_n_up_to_1e18():
    assert check_n(1e18) == MAX_N
    with pytest.raises(ValueError, match="n"):
        check_n(1e19)


@pytest.mark.parametrize("text", ["1e6", "1000000", "7"])
def test_check_int_does_not_parse_text(text):
    """Strings are the command line's to parse (attnscale.cli.parsing.parse_count), not the library's."""
    with pytest.raises(InputTypeError, match="^reps: got '.*' \\(str\\); expected an integer, not text"):
        check_int(text, "reps")
    with pytest.raises(InputError, match="^n: "):
        check_n(text)


@pytest.mark.parametrize("bad", [0, -3, 2.5, float("nan"), float("inf"), "ten", True])
def test_bad_n(bad):
    with pytest.raises((ValueError, TypeError), match="^n: "):
        check_n(bad)


@pytest.mark.parametrize("bad", [-1e-9, float("nan"), float("inf"), "x", None])
def test_bad_beta(bad):
    with pytest.raises((ValueError, TypeError), match="^beta: "):
        check_beta(bad)


def test_rng_forms_are_reproducible():
    a = as_generator(7).random(3)
    b = as_generator(np.random.SeedSequence(7)).random(3)
    assert np.array_equal(a, b)
    with pytest.raises(TypeError, match="rng"):
        as_generator("seed")
    with pytest.raises(ValueError, match="rng"):
        as_generator(-1)


def test_vectors_and_matrices():
    q = check_unit_vector([0.6, 0.8], "q")
    assert np.allclose(q, [0.6, 0.8])
    with pytest.raises(ValueError, match="q: has norm"):
        check_unit_vector([1.0, 1.0], "q")
    with pytest.raises(ValueError, match="q: got length 2; expected length 3"):
        check_unit_vector([1.0, 0.0], "q", d=3)
    with pytest.raises(ValueError, match="keys: got shape"):
        check_matrix(np.ones(3), "keys")
    with pytest.raises(ValueError, match="keys: contains NaN"):
        check_matrix([[np.nan, 1.0]], "keys")
    with pytest.raises(ValueError, match="keys: row 1 has norm"):
        check_on_sphere(np.array([[1.0, 0.0], [2.0, 0.0]]))
    assert check_int(7.0, "reps") == 7


def test_laws_raise_input_error_for_bad_arguments() -> None:
    """Laws' own checks are about user input: InputError (still a ValueError)."""
    from attnscale._validate import InputError, InputTypeError
    from attnscale.laws import GaussianKeys, GreatSubsphere, PowerDensity, UniformScoreLaw, law_from_name
    from attnscale.limits import CriticalLimit

    cases = [
        lambda: PowerDensity(3, eta=-5.0),
        lambda: UniformScoreLaw(3, scale=-1.0),
        lambda: GaussianKeys(3, sigma=0.0),
        lambda: GreatSubsphere(5, 3).score_law([0.0, 0.0, 0.0, 1.0, 0.0]),
        lambda: law_from_name("uniform", 3, kappa=1.0),
        lambda: CriticalLimit(1.0, 1.0).default_m(2.0),
        lambda: check_int("x", "n"),
        lambda: check_int(2.5, "n"),
    ]
    for case in cases:
        with pytest.raises(InputError):
            case()
    with pytest.raises(InputTypeError):
        check_int([1], "n")
    assert issubclass(InputError, ValueError) and issubclass(InputTypeError, TypeError)
    from attnscale import _errors

    assert InputError is _errors.InputError and InputTypeError is _errors.InputTypeError
