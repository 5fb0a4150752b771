"""Tests of cli/parsing.py: the only place that reads the command line's text (``1e6``, specs, arrays)."""

from __future__ import annotations

import numpy as np
import pytest

from attnscale._errors import InputError
from attnscale.cli.parsing import (
    LAW_NAMES,
    MAX_N,
    UsageError,
    law_spec,
    load_array,
    parse_count,
    parse_n,
    query_from_cosine,
    rule_params,
)


@pytest.mark.parametrize("text", ["1000000", "1e6", "1E6", "1000000.0", "1_000_000", " 1e6 ", 10**6, 1e6])
def test_n_spellings_agree(text):
    """Moved from tests/test_validate.py with the parsing of "1e6" (check_int no longer reads text)."""
    assert parse_n(text) == 10**6


def test_n_up_to_1e18():
    assert parse_n("1e18") == MAX_N
    with pytest.raises(InputError, match=r"^--n: got 1e\+19; expected an integer <= 1e\+18$"):
        parse_n("1e19")


@pytest.mark.parametrize(
    "text, message",
    [
        ("0", "--n: got 0; expected an integer >= 1"),
        ("2.5", "--n: got 2.5; expected an integer"),
        ("nan", "--n: got nan; expected a finite integer"),
        ("inf", "--n: got inf; expected a finite integer"),
        ("ten", "--n: got 'ten'; expected an integer such as 1000 or 1e6"),
        ("", "--n: got ''; expected an integer such as 1000 or 1e6"),
    ],
)
def test_bad_counts_name_the_option(text, message):
    with pytest.raises(InputError) as exc:
        parse_n(text)
    assert str(exc.value) == message
    assert isinstance(exc.value, InputError) and isinstance(exc.value, ValueError)


def test_parse_count_minimum():
    assert parse_count("4096", "--train-len", minimum=2) == 4096
    with pytest.raises(InputError, match="^--train-len: got 1; expected an integer >= 2"):
        parse_count("1", "--train-len", minimum=2)


def test_constants_agree_with_the_library():
    """parsing.py keeps a copy of MAX_N so that the help does not import numpy; it must agree."""
    from attnscale import _validate, laws

    assert LAW_NAMES is laws.LAW_NAMES  # one table, in attnscale._names
    assert MAX_N == _validate.MAX_N


def test_law_spec_and_query():
    spec = law_spec("power", 4, 10.0, 2, 1.5, 0.0)
    law, q = spec.build()
    assert type(law).__name__ == "PowerDensity" and q.tolist() == [0.0, 0.0, 0.0, 1.0]
    assert np.allclose(query_from_cosine(3, 0.6), [0.6, 0.0, 0.8])
    with pytest.raises(InputError, match="^--law: got 'cauchy'"):
        law_spec("cauchy", 3, 10.0, 2, 1.0, 1.0)
    with pytest.raises(UsageError, match="^--d: got 1"):
        law_spec("uniform", 1, 10.0, 2, 1.0, 1.0)
    with pytest.raises(UsageError, match="^--query-cos: got 2.0"):
        query_from_cosine(3, 2.0)


def test_rule_params():
    assert rule_params(["yarn.factor=40", "ssmax.s=0.2", "yarn.mscale=1e0"]) == {
        "yarn": {"factor": 40, "mscale": 1.0},
        "ssmax": {"s": 0.2},
    }
    assert isinstance(rule_params(["yarn.factor=40"])["yarn"]["factor"], int)
    for bad in ("yarn", "yarn.factor", "yarn.factor=", ".factor=4", "yarn.factor=forty"):
        with pytest.raises(UsageError, match="^--param: got"):
            rule_params([bad])


def test_load_array(tmp_path):
    assert load_array(None, "--keys") is None
    np.save(tmp_path / "a.npy", np.arange(3.0))
    assert load_array(tmp_path / "a.npy", "--keys").tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(UsageError, match="^--keys: no such file"):
        load_array(tmp_path / "missing.npy", "--keys")
    (tmp_path / "b.npy").write_text("not an array")
    with pytest.raises(UsageError, match="^--scores: cannot read"):
        load_array(tmp_path / "b.npy", "--scores")


def test_rule_params_parser():
    """Moved from tests/test_schedules.py with cli._rule_params (now cli.parsing.rule_params)."""
    assert rule_params(["yarn.factor=40", "yarn.mscale=0.5", "grok.attn_temperature_len=1024"]) == {
        "yarn": {"factor": 40, "mscale": 0.5}, "grok": {"attn_temperature_len": 1024}}
    for bad in ("yarn", "yarn.factor", ".factor=1", "yarn.=1", "yarn.factor=x"):
        with pytest.raises(UsageError, match="--param"):
            rule_params([bad])
