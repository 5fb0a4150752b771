"""Offline corpora: deterministic selection, provenance, bad input."""

from __future__ import annotations

import ast
import hashlib
import platform

import pytest

from attnscale.corpus import Corpus, directory_corpus, stdlib_corpus


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_docstrings_of_a_small_tree(tmp_path):
    _write(tmp_path, "a.py", 'class A:\n    """Class A docs, long enough."""\n    def f(self):\n        """Method   f\n   docs here."""\n')
    _write(tmp_path, "pkg/b.py", '"""Module b docs, long enough."""\ndef g():\n    """Class A docs, long enough."""\n')
    _write(tmp_path, "tests/c.py", '"""Never read: a test folder."""\n')
    _write(tmp_path, "broken.py", "def (:\n")
    c = stdlib_corpus(count=10, min_chars=10, root=tmp_path)
    assert set(c.texts) == {"Class A docs, long enough.", "Method f docs here.", "Module b docs, long enough."}
    assert dict(zip(c.texts, c.sources))["Method f docs here."] == "a.py:A.f"
    # ordered by the SHA-256 of the text, independent of file order
    assert list(c.texts) == sorted(c.texts, key=lambda t: hashlib.sha256(t.encode()).hexdigest())
    p = c.provenance
    assert p["files"] == 3 and p["docstrings"] == 4 and p["unique"] == 3 and p["selected"] == 3
    assert p["sha256"] == hashlib.sha256("\0".join(c.texts).encode()).hexdigest() == c.sha256
    assert stdlib_corpus(count=1, min_chars=10, root=tmp_path).texts == c.texts[:1]


def test_stdlib_corpus_is_deterministic_and_recorded():
    a = stdlib_corpus(count=40)
    b = stdlib_corpus(count=40)
    assert a.texts == b.texts and a.sha256 == b.sha256 and len(a) == 40
    assert a.provenance["python"] == platform.python_version()
    assert all(400 <= len(t) <= 4000 for t in a.texts)
    # each text really is the docstring its source names
    path, qual = a.sources[0].split(":")
    tree = ast.parse(open(f"{a.provenance['root']}/{path}", encoding="utf-8").read())
    node = tree
    for part in ([] if qual == "<module>" else qual.split(".")):
        node = next(n for n in ast.iter_child_nodes(node) if getattr(n, "name", None) == part)
    assert " ".join(ast.get_docstring(node).split()) == a.texts[0]


def test_directory_corpus(tmp_path):
    _write(tmp_path, "b.txt", "Second file.\n")
    _write(tmp_path, "a.txt", "One  two\nthree.\n\n\nFour.\n\nOne two three.\n")
    _write(tmp_path, "skip.md", "not a text file")
    c = directory_corpus(tmp_path)
    assert c.texts == ("One two three.", "Four.", "Second file.")
    assert c.sources == ("a.txt#0", "a.txt#1", "b.txt#0")
    assert c.provenance["files"] == 2
    assert directory_corpus(tmp_path, count=1, min_chars=6).texts == ("One two three.",)


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="root"):
        stdlib_corpus(root=tmp_path / "missing")
    with pytest.raises(ValueError, match="root"):
        stdlib_corpus(root=tmp_path)  # no docstrings
    with pytest.raises(ValueError, match="count"):
        stdlib_corpus(count=0)
    with pytest.raises(ValueError, match="max_chars"):
        stdlib_corpus(min_chars=10, max_chars=5)
    with pytest.raises(ValueError, match="directory"):
        directory_corpus(tmp_path)
    with pytest.raises(ValueError, match="directory"):
        directory_corpus(tmp_path / "missing")
    with pytest.raises(ValueError, match="sources"):
        Corpus(("a", "b"), ("x",))
    with pytest.raises(ValueError, match="texts"):
        Corpus((), ())
