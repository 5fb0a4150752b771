"""The probe: hooked attention reproduces the model's, per-head tails and c under each rule, offline."""

from __future__ import annotations

import json
from pathlib import Path
import math
import socket

import numpy as np
import pytest
import torch

from attnscale.corpus import Corpus, stdlib_corpus
from attnscale.estimate import estimate_tail
from attnscale.probe import (
    PROBE_NS,
    analyze_head,
    capture,
    load_model,
    probe,
    probe_config,
    query_scores,
    regime_name,
    split_texts,
)
from attnscale.schedules import rule_multiplier
from attnscale.tails import ScoreTail, regime


class NetworkUsed(RuntimeError):
    pass


def _no_network(*args, **kwargs):
    raise NetworkUsed("the probe tried to use the network")


@pytest.fixture(scope="module")
def model():
    """The model and tokenizer, loaded with every socket connection and DNS lookup refused."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", _no_network)
        mp.setattr(socket, "create_connection", _no_network)
        mp.setattr(socket, "getaddrinfo", _no_network)
        with pytest.raises(NetworkUsed):
            socket.create_connection(("localhost", 9))
        return load_model()


@pytest.fixture(scope="module")
def texts():
    corpus = stdlib_corpus(count=6)
    # different lengths, so that the batch is padded
    return [t[: 150 + 120 * i] for i, t in enumerate(corpus.texts)]


@pytest.fixture(scope="module")
def captured(model, texts):
    return capture(*model, texts, max_length=64, batch_size=6)


def test_hooked_attention_reproduces_eager_attention(model, texts, captured):
    mdl, tok = model
    assert set(captured.reproduction_error) == set(range(6))
    assert max(captured.reproduction_error.values()) < 1e-5
    # independently: the model alone (no hooks), one padded text, softmax of the stored q, k in numpy
    batch = tok(texts, return_tensors="pt", padding=True, truncation=True, max_length=64)
    assert not batch["attention_mask"].all()  # padding is present
    with torch.no_grad():
        att = mdl(**batch, output_attentions=True).attentions
    t = 0
    T = int(batch["attention_mask"][t].sum())
    assert T < batch["attention_mask"].shape[1]
    rows = captured.text == t
    for layer in (0, 3, 5):
        q = captured.queries[layer][rows].astype(np.float64)  # (T, H, d_h)
        k = captured.keys[layer][rows].astype(np.float64)
        logits = np.einsum("ihd,jhd->hij", q, k) / math.sqrt(q.shape[-1])
        p = np.exp(logits - logits.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        model_p = att[layer][t, :, :T, :T].double().numpy()
        assert np.abs(p - model_p).max() < 1e-5
        assert att[layer][t, :, :T, T:].abs().max().item() < 1e-12  # nothing on padding


def test_capture_bookkeeping_and_sinks(model, texts, captured):
    mdl, tok = model
    batch = tok(texts, truncation=True, max_length=64)
    ids = np.concatenate([np.array(x) for x in batch["input_ids"]])
    np.testing.assert_array_equal(captured.token_ids, ids)
    np.testing.assert_array_equal(captured.text, np.concatenate([[i] * len(x) for i, x in enumerate(batch["input_ids"])]))
    sinks = np.isin(ids, [tok.cls_token_id, tok.sep_token_id])
    np.testing.assert_array_equal(captured.sink, sinks)
    assert captured.sink.sum() == 2 * len(texts)
    # sink mass and margin of one token, from the model's own attention and logits
    t, i, layer, h = 2, 5, 4, 7
    enc = tok(texts[t], return_tensors="pt", truncation=True, max_length=64)
    with torch.no_grad():
        att = mdl(**enc, output_attentions=True).attentions[layer][0, h].double().numpy()
    row = np.flatnonzero(captured.text == t)[i]
    is_sink = sinks[captured.text == t]
    assert captured.sink_mass[layer][row, h] == pytest.approx(att[i, is_sink].sum(), abs=1e-6)
    q = captured.queries[layer][row, h].astype(np.float64)
    k = captured.keys[layer][captured.text == t][:, h].astype(np.float64)
    logits = k @ q / math.sqrt(q.size)
    assert captured.sink_margin[layer][row, h] == pytest.approx(logits[is_sink].max() - logits[~is_sink].max(), abs=1e-9)
    assert np.isnan(captured.sink_mass[layer][captured.sink]).all()


def test_query_scores_are_the_logits_over_beta():
    rng = np.random.default_rng(3)
    keys, q = rng.normal(size=(50, 8)), rng.normal(size=8)
    s, beta = query_scores(q, keys)
    np.testing.assert_allclose(beta * s, keys @ q / math.sqrt(8), rtol=1e-13)
    assert np.abs(s).max() <= 1.0
    assert beta == pytest.approx(np.linalg.norm(q) * np.linalg.norm(keys, axis=1).max() / math.sqrt(8), rel=1e-14)
    with pytest.raises(ValueError, match="q"):
        query_scores(np.ones(3), keys)
    with pytest.raises(ValueError, match="q"):
        query_scores(np.zeros(8), keys)


def test_split_texts_keeps_queries_away_from_their_keys():
    keys, queries = split_texts(np.array([0, 0, 1, 1, 2, 3, 3]))
    assert keys.tolist() == [True, True, False, False, True, False, False]
    assert (keys ^ queries).all()


def test_regime_name_matches_tails_regime():
    tail = ScoreTail(1.0, 1.0, 0.5)
    for beta in (0.5, 3.0, 40.0, 500.0, 5e4):
        r = regime(1000, beta, tail)
        assert regime_name(beta, r.c) == r.name


@pytest.fixture(scope="module")
def sphere_head():
    """Keys uniform on S^2, so S = cos(angle) is uniform on [-1, 1]: gamma = 1, kappa = 1/2, s* = 1."""
    rng = np.random.default_rng(11)
    keys = rng.normal(size=(6000, 3))
    keys /= np.linalg.norm(keys, axis=1, keepdims=True)
    keys = np.vstack([keys, keys[:250]])  # exact duplicates, to be removed
    queries = rng.normal(size=(5, 3))
    queries *= np.array([[4.0], [5.0], [6.0], [7.0], [8.0]]) / np.linalg.norm(queries, axis=1, keepdims=True)
    ns = (256, 4096, 10**6)
    return keys, queries, ns, analyze_head(keys, queries, 512, ns=ns, layer=2, head=3)


def test_analyze_head_on_a_known_tail(sphere_head):
    keys, queries, ns, res = sphere_head
    assert (res.layer, res.head, res.queries, res.duplicates, res.keys) == (2, 3, 5, 250, 6000)
    assert res.kind == "weibull"
    lo, hi = res.gamma_ci
    assert lo < 1.0 < hi  # medians of the per-query 95% intervals
    assert res.endpoint == pytest.approx(1.0, abs=0.01)
    # each query's c against the exact critical scale beta*(n) = n / 2 of uniform keys on S^2
    for n in ns:
        c_lo, c_hi = res.c_ci["standard"][n]
        c = res.c["standard"][n]
        assert c_lo <= c <= c_hi
        betas = sorted(np.linalg.norm(queries, axis=1) / math.sqrt(3))  # max |k| = 1 up to rounding
        c_true_range = (betas[0] / (n / 2), betas[-1] / (n / 2))
        assert c_lo <= c_true_range[1] and c_hi >= c_true_range[0]


def test_analyze_head_c_is_beta_m_over_the_estimated_critical_scale(sphere_head):
    keys, queries, ns, res = sphere_head
    unique = np.unique(keys, axis=0)
    direct = []
    for q in queries:
        s, beta = query_scores(q, unique)
        est = estimate_tail(s)
        direct.append((beta, {n: est.critical_beta(n).value for n in (*ns, 512)}))
    for n in ns:
        cs = sorted(beta / b[n] for beta, b in direct)
        assert res.c["standard"][n] == pytest.approx(cs[2], rel=1e-12)  # the median of 5 queries
        for rule in ("yarn", "logn", "entropy", "ssmax", "llama4"):
            # a common multiplier keeps the median query: c scales by m(n) exactly
            assert res.c[rule][n] == pytest.approx(cs[2] * rule_multiplier(rule, n, 512), rel=1e-12)
        crit = sorted(beta / b[512] for beta, b in direct)  # the critical rule keeps c(L)
        assert res.c["critical"][n] == pytest.approx(crit[2], rel=1e-12)
        assert res.regime["standard"][n] == regime_name(2.0, res.c["standard"][n])  # every beta_q > 2
    c_std = [res.c["standard"][n] for n in ns]
    assert c_std == sorted(c_std, reverse=True)  # more keys, same beta: further below criticality


def test_analyze_head_bad_input():
    keys = np.random.default_rng(0).normal(size=(40, 4))
    with pytest.raises(ValueError, match="queries"):
        analyze_head(keys, np.ones((2, 3)), 512)
    with pytest.raises(ValueError, match="rules"):
        analyze_head(keys, np.ones((2, 4)), 512, rules=["nope"])
    with pytest.raises(ValueError, match="train_len"):
        analyze_head(keys, np.ones((2, 4)), 1)


@pytest.fixture(scope="module")
def small_probe(model):
    corpus = Corpus(tuple(stdlib_corpus(count=8).texts), tuple(f"t{i}" for i in range(8)), {"source": "test"})
    return probe(texts=corpus, layers=[0, 5], model=model,
                 config={"max_length": 48, "queries_per_head": 3, "ns": [256, 4096]})


def test_probe_end_to_end_json(small_probe):
    out = small_probe
    json.dumps(out, allow_nan=False)  # strict JSON: no NaN or inf
    assert out["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert out["train_len"] == 512 and out["reproduction_error"] < 1e-5
    assert out["corpus"]["texts"] == 8
    assert [(h["layer"], h["head"]) for h in out["heads"]] == [(l, h) for l in (0, 5) for h in range(12)]
    for h in out["heads"]:
        assert set(h["c"]) == set(probe_config()["rules"])
        assert set(h["c"]["yarn"]) == {"256", "4096"}
        assert h["kind"] in ("weibull", "gumbel", "atom") and h["queries"] == 3
        for rule, row in h["regime"].items():
            for name in row.values():
                assert name in (None, "global", "subcritical", "critical", "supercritical")
    # layer 0 keys depend on (token, position) only: texts repeat them exactly; layer 5 keys are contextual
    assert all(h["duplicates"] > 0 for h in out["heads"] if h["layer"] == 0)
    assert all(h["duplicates"] == 0 for h in out["heads"] if h["layer"] == 5)


def test_probe_config_sizes():
    quick, full = probe_config(quick=True), probe_config()
    assert quick["texts"] < full["texts"] and quick["queries_per_head"] < full["queries_per_head"]
    assert quick["ns"] == list(PROBE_NS) == [256, 4096, 131072, 1048576]
    with pytest.raises(ValueError, match="seed"):
        probe_config(seed=-1)


def test_capture_bad_input(model):
    with pytest.raises(TypeError, match="texts"):
        capture(*model, "one string")
    with pytest.raises(ValueError, match="max_length"):
        capture(*model, ["a text"], max_length=1000)


def test_real_heads_experiment_table_claims_and_figure(small_probe):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from attnscale.experiments import real_heads

    table = real_heads.table_from_probe(small_probe)
    assert table.num_rows == 24 * 7 * 2  # heads x rules x n
    claims = real_heads.claims(table)
    assert len(claims) == 8 and all(c.ok for c in claims), [c for c in claims if not c.ok]
    assert all(c.experiment == "real_heads" for c in claims)
    fig = real_heads.figure(table)
    plt.close(fig)
    cfg = real_heads.config(quick=True, seed=3)
    assert cfg["seed"] == 3 and set(PROBE_NS) <= set(cfg["ns"])


def test_probe_reads_a_folder_of_texts(model, tmp_path):
    paragraphs = stdlib_corpus(count=6).texts
    (tmp_path / "a.txt").write_text("\n\n".join(paragraphs[:3]), encoding="utf-8")
    (tmp_path / "b.txt").write_text("\n\n".join(paragraphs[3:]), encoding="utf-8")
    out = probe(texts=tmp_path, layers=[5], model=model, config={"max_length": 32, "queries_per_head": 2, "ns": [4096]})
    assert out["corpus"]["source"] == "text files" and out["corpus"]["texts"] == 6 and out["corpus"]["files"] == 2
    assert len(out["heads"]) == 12
    with pytest.raises(ValueError, match="texts"):
        probe(texts=Corpus(("only one text",), ("x",)), layers=[5], model=model)


# ------------------------------------------------------------------ any Hugging Face model: a tiny Llama


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    from _tiny_models import save_tiny_llama

    return save_tiny_llama(tmp_path_factory.mktemp("tiny_llama"))


@pytest.fixture(scope="module")
def tiny_probe(tiny_llama):
    corpus = Corpus(tuple(stdlib_corpus(count=12).texts), tuple(f"t{i}" for i in range(12)), {"source": "test"})
    return probe(texts=corpus, path=tiny_llama,
                 config={"max_length": 40, "queries_per_head": 3, "ns": [256, 4096], "curve_queries": 2})


def test_probe_a_causal_model_from_its_folder(tiny_llama, tiny_probe):
    out = tiny_probe
    json.dumps(out, allow_nan=False)
    assert out["causal"] is True and out["train_len"] == 256
    assert out["model"] == str(tiny_llama)
    assert out["reproduction_error"] < 1e-5  # float64 scores vs the model's own float32 eager attention
    assert [(h["layer"], h["head"]) for h in out["heads"]] == [(l, h) for l in (0, 1) for h in range(4)]
    assert out["config"]["curve_ns"] == [16, 32, 40]
    for h in out["heads"]:
        assert h["kind"] in ("weibull", "gumbel", "atom") and h["queries"] == 3
        assert h["gamma"] is not None or h["kind"] != "weibull"
        assert h["curve"]["n"] == [16, 32, 40]
        assert h["curve"]["keys"][0] == 15  # positions 0..15 less the first token (the sink)
        for c, mw in zip(h["curve"]["c"], h["curve"]["max_weight"]):
            assert c is None or c > 0
            assert mw is None or 0 < mw <= 1


def test_recorded_queries_and_keys_give_the_model_eager_attention(tiny_llama):
    """Independently of the recorder: softmax of the stored q k^T / sqrt(d_h), causal, equals the model's eager attention."""
    model, tok = load_model(tiny_llama)
    texts = [t[:200] for t in stdlib_corpus(count=3).texts]
    cap = capture(model, tok, texts, max_length=24, batch_size=3)
    assert cap.position is not None and cap.sink[cap.position == 0].all()
    t = 1
    ids = tok(texts[t], truncation=True, max_length=24, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        att = model(input_ids=ids, output_attentions=True).attentions  # eager (the loaded model's)
    rows = cap.text == t
    np.testing.assert_array_equal(cap.token_ids[rows], ids[0].numpy())
    for layer in (0, 1):
        q = cap.queries[layer][rows].astype(np.float64)
        k = cap.keys[layer][rows].astype(np.float64)
        logits = np.einsum("ihd,jhd->hij", q, k) / math.sqrt(q.shape[-1])
        T = logits.shape[-1]
        logits[:, ~np.tri(T, dtype=bool)] = -np.inf
        p = np.exp(logits - logits.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        assert np.abs(p - att[layer][0].double().numpy()).max() < 1e-5
        # the sink (position 0 here): the model's attention mass on it, and its logit margin
        is_sink = cap.sink[rows]
        assert is_sink[0] and not is_sink[1:].any()
        model_p = att[layer][0].double().numpy()  # (H, T, T)
        np.testing.assert_allclose(cap.sink_mass[layer][rows][1:], model_p[:, 1:, 0].T, atol=1e-6)
        margin = logits[:, 2:, 0] - np.max(np.where(np.isfinite(logits[:, 2:, 1:]), logits[:, 2:, 1:], -np.inf), axis=-1)
        np.testing.assert_allclose(cap.sink_margin[layer][rows][2:], margin.T, atol=1e-5)


def test_curve_for_head_against_a_direct_computation():
    from attnscale.probe import curve_for_head

    rng = np.random.default_rng(4)
    T, d = 40, 6
    text = np.repeat([0, 1], T)
    position = np.tile(np.arange(T), 2)
    sink = position == 0
    Q, K = rng.normal(size=(2 * T, d)), rng.normal(size=(2 * T, d))
    out = curve_for_head(Q, K, text, position, sink, [20, 40], count=5, rng=np.random.default_rng(0))
    assert out["n"] == [20, 40] and out["queries"] == [2, 2] and out["keys"] == [19, 39]
    for i, n in enumerate((20, 40)):
        cs = []
        for t in (0, 1):
            q = Q[t * T + n - 1]
            keys = K[t * T + 1: t * T + n]
            s, beta = query_scores(q, keys)
            cs.append(beta / estimate_tail(s).critical_beta(n - 1).value)
        assert out["c"][i] == pytest.approx(min(cs), rel=1e-12)  # the lower median of two
        t_low = int(np.argmin(cs))
        z = K[t_low * T + 1: t_low * T + n] @ Q[t_low * T + n - 1] / math.sqrt(d)
        w = np.exp(z - z.max())
        assert out["max_weight"][i] == pytest.approx(w.max() / w.sum(), rel=1e-12)


def test_probe_cli_on_a_model_folder(tmp_path):
    import subprocess
    import sys

    from _tiny_models import save_tiny_llama

    folder = save_tiny_llama(tmp_path / "llama", layers=1, heads=2, kv_heads=1)  # small: the CLI runs --quick
    cmd = [sys.executable, "-m", "attnscale", "probe", "--model", str(folder), "--quick", "--max-length", "24", "--json"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert [(h["layer"], h["head"]) for h in out["heads"]] == [(0, 0), (0, 1)]
    assert all(h["kind"] in ("weibull", "gumbel", "atom") and h["queries"] == 8 for h in out["heads"])
    assert out["config"]["max_length"] == 24 and out["causal"] is True
    bad = subprocess.run([sys.executable, "-m", "attnscale", "probe", "--model", str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--model" in bad.stderr
    bad = subprocess.run([sys.executable, "-m", "attnscale", "probe", "--device", "tpu"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--device" in bad.stderr


def test_position_gap_on_a_head_with_constant_standard_c():
    """c_0 = 0.5 at every n, logn with L = 2: per position c = 0.5 log2(p + 1), one multiplier c = 0.5 log2(n)."""
    import pyarrow as pa

    from attnscale.experiments import real_heads

    ns = [100, 10**4, 10**6, 10**7]
    rows = {"layer": [0] * 8, "head": [0] * 8, "rule": ["standard"] * 4 + ["logn"] * 4, "n": ns * 2,
            "c": [0.5] * 4 + [0.5 * math.log2(n) for n in ns], "beta": [50.0] * 8, "train_len": [2] * 8}
    table = pa.table(rows)
    n = 2**21
    gap, frac = real_heads.position_gap(table, "logn", n)
    positions = np.unique(np.linspace(2, n, real_heads.GAP_POSITIONS).round().astype(np.int64))
    one = "supercritical"  # 0.5 * 21 > 10
    per_pos = ["supercritical" if 0.5 * max(1.0, math.log2(p)) > 10 else "critical" for p in positions]
    assert frac.shape == (1,)
    assert frac[0] == pytest.approx(np.mean([r != one for r in per_pos]), abs=1e-12)
    assert 0.4 < frac[0] < 0.6
    expected_gap = np.mean([abs(math.log10(21 / max(1.0, math.log2(p)))) for p in positions])
    assert gap[0] == pytest.approx(expected_gap, rel=1e-9)


def test_real_heads_table_and_figure_with_a_causal_model(tiny_probe):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from attnscale.experiments import real_heads

    table = real_heads.table_from_probe(tiny_probe)
    rule = np.asarray(table["rule"].to_pylist())
    assert (rule == real_heads.REAL_N).sum() == 8 * 3  # heads x curve lengths
    claims = real_heads.claims(table)
    assert claims[0].ok  # the recorder reproduces the model's eager attention
    plt.close(real_heads.figure(table))


def test_vectorized_regimes_match_regime_name():
    from attnscale.experiments.real_heads import _regimes

    names = ["global", "subcritical", "critical", "supercritical"]
    beta = np.array([0.5, 3.0, 3.0, 3.0, 3.0, 3.0, 1.0])
    c = np.array([1.0, 0.01, 0.1, 1.0, 10.0, 10.5, 50.0])
    assert [names[k] for k in _regimes(beta, c)] == [regime_name(b, x) for b, x in zip(beta, c)]


@pytest.mark.parametrize("family", ["qwen2", "mistral", "gpt_neox"])
def test_capture_other_causal_families(tiny_llama, tmp_path, family):
    """Qwen2, Mistral and GPT-NeoX (random weights from a config, the tiny Llama's tokenizer): the float64
    recorder reproduces each model's own eager attention."""
    import shutil

    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    common = dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, max_position_embeddings=128, initializer_range=0.2)
    if family != "gpt_neox":
        common["num_key_value_heads"] = 2
    config = AutoConfig.for_model(family, **common)
    torch.manual_seed(1)
    AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (Path(tiny_llama) / name).exists():
            shutil.copy(Path(tiny_llama) / name, tmp_path / name)
    model, tokenizer = load_model(tmp_path)
    texts = [t[:300] for t in stdlib_corpus(count=4).texts]
    cap = capture(model, tokenizer, texts, max_length=24, batch_size=2)
    assert cap.layers == (0, 1) and cap.queries[0].shape[1:] == (4, 8) and cap.keys[1].shape[1:] == (4, 8)
    assert max(cap.reproduction_error.values()) < 1e-5
    assert cap.position is not None and cap.position.max() == 23


def test_finite_verdicts_come_from_the_exact_law_of_the_median_query():
    """analyze_head's finite-n verdict (section 7) is the spliced law of a Weibull-class query, drawn at n."""
    from attnscale.finite import regime_from_max_weight
    from attnscale.laws import UniformSphere
    from attnscale.probe import FINITE_DRAWS, analyze_head

    rng = np.random.default_rng(5)
    keys = UniformSphere(3).sample(4000, rng)
    queries = 300.0 * UniformSphere(3).sample(6, rng)  # beta_q = 300 / sqrt(3) = 173
    ns = (2000, 10**6)
    head = analyze_head(keys, queries, 512, ns=ns)
    assert [head.finite[n]["part"] for n in ns] == ["measured", "extrapolated"]
    for n in ns:
        v = head.finite[n]
        assert v["regime"] == regime_from_max_weight(head.beta, v["max_weight"]) or head.beta != head.beta
        assert 0.0 < v["max_weight"] < 1.0 and 1.0 <= v["n_eff"] <= n
        assert v["max_weight_se"] < 0.05
    # uniform keys on S^2 at beta = 173: c = beta / beta*(n) = 0.17 at n = 2000 (critical), 3.5e-4 at 1e6
    assert head.finite[2000]["regime"] == "critical" and head.finite[10**6]["regime"] == "subcritical"
    assert analyze_head(keys, queries, 512, ns=ns, finite_size=0).finite == {}
    assert FINITE_DRAWS >= 1000
