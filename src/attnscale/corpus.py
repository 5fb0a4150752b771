"""Offline text corpora for probing real models, with their provenance.

The probe (:mod:`attnscale.probe`) needs real text and no network. :func:`stdlib_corpus` builds
one from what every Python installation ships: the documentation strings of the standard
library's modules, classes and functions (parsed with :mod:`ast`, never imported). The
selection is deterministic (texts ordered by the SHA-256 of their content), and the corpus
records where it came from: the Python version, the standard library's path, how many files
and docstrings were seen, and a SHA-256 of the selected texts. :func:`directory_corpus` reads
a user's own ``*.txt`` files instead.

This module has no mathematics; it feeds docs/theory.md section 2's tail estimates of real heads.
"""

from __future__ import annotations

import ast
import hashlib
import os
import platform
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._validate import InputError, check_int

__all__ = ["Corpus", "directory_corpus", "stdlib_corpus"]

#: Folders of the standard library left out: third-party packages, test suites, caches.
SKIPPED_DIRS = ("site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__")


@dataclass(frozen=True)
class Corpus:
    """Texts and where they came from.

    Parameters
    ----------
    texts : tuple of str
        The texts, whitespace-normalized, no duplicates.
    sources : tuple of str
        One label per text, e.g. ``"json/decoder.py:JSONDecoder.decode"`` or a file name.
    provenance : dict
        How the corpus was made (JSON-able): ``source``, counts, selection rule and ``sha256``.

    Examples
    --------
    >>> c = Corpus(("one text",), ("a.txt",), {"source": "example"})
    >>> len(c), c.sha256 == hashlib.sha256(b"one text").hexdigest()
    (1, True)
    """

    texts: tuple[str, ...]
    sources: tuple[str, ...]
    provenance: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.sources):
            raise InputError(f"sources: got {len(self.sources)} labels for {len(self.texts)} texts; expected one per text")
        if not self.texts:
            raise InputError("texts: got an empty corpus; expected at least one text")

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def sha256(self) -> str:
        """SHA-256 of the texts joined by NUL bytes: identifies the corpus' content."""
        return hashlib.sha256("\0".join(self.texts).encode("utf-8")).hexdigest()


def _normalize(text: str) -> str:
    return " ".join(text.split())


def _docstrings(path: Path, label: str) -> list[tuple[str, str]]:
    """(qualified label, docstring) of the module, classes and functions of one file."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
        return []
    out: list[tuple[str, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}.{child.name}" if prefix else child.name
                doc = ast.get_docstring(child)
                if doc:
                    out.append((f"{label}:{name}", doc))
                visit(child, name)

    doc = ast.get_docstring(tree)
    if doc:
        out.append((f"{label}:<module>", doc))
    visit(tree, "")
    return out


def stdlib_corpus(count: int = 256, min_chars: int = 400, max_chars: int = 4000, root: str | os.PathLike | None = None) -> Corpus:
    r"""Docstrings of the Python standard library as a corpus: built offline, deterministic.

    Every ``.py`` file under the standard library (``sysconfig.get_paths()["stdlib"]``, without
    :data:`SKIPPED_DIRS`) is parsed; the docstrings of its module, classes and functions with
    ``min_chars <= len <= max_chars`` characters (after collapsing whitespace) are kept, exact
    duplicates dropped, and the ``count`` texts with the smallest SHA-256 are selected: a
    pseudo-random, reproducible sample that does not depend on the order of the files.

    Parameters
    ----------
    count : int
        Number of texts, ``>= 1`` (fewer if the library has fewer).
    min_chars, max_chars : int
        Length bounds of a text, ``1 <= min_chars <= max_chars``.
    root : path, optional
        Folder to read instead of the standard library (for tests).

    Returns
    -------
    Corpus
        With ``provenance = {"source", "python", "root", "files", "docstrings", "unique",
        "selected", "min_chars", "max_chars", "selection", "sha256"}``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> tmp = tempfile.TemporaryDirectory()
    >>> _ = pathlib.Path(tmp.name, "m.py").write_text("'''A module docstring long enough.'''")
    >>> c = stdlib_corpus(count=5, min_chars=10, root=tmp.name)
    >>> c.texts, c.sources, c.provenance["files"]
    (('A module docstring long enough.',), ('m.py:<module>',), 1)
    >>> tmp.cleanup()
    """
    count = check_int(count, "count", minimum=1)
    lo = check_int(min_chars, "min_chars", minimum=1)
    hi = check_int(max_chars, "max_chars", minimum=lo)
    base = Path(sysconfig.get_paths()["stdlib"] if root is None else root)
    if not base.is_dir():
        raise InputError(f"root: got {str(base)!r}; expected an existing folder")
    files, found = 0, 0
    unique: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS)
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            path = Path(dirpath, name)
            files += 1
            for label, doc in _docstrings(path, path.relative_to(base).as_posix()):
                found += 1
                text = _normalize(doc)
                if lo <= len(text) <= hi and text not in unique:
                    unique[text] = label
    if not unique:
        raise InputError(f"root: no docstring of {lo}..{hi} characters under {str(base)!r}")
    chosen = sorted(unique, key=lambda t: hashlib.sha256(t.encode("utf-8")).hexdigest())[:count]
    corpus = Corpus(tuple(chosen), tuple(unique[t] for t in chosen))
    provenance = {
        "source": "docstrings of the Python standard library (modules, classes, functions), parsed with ast",
        "python": platform.python_version(),
        "root": str(base),
        "files": files,
        "docstrings": found,
        "unique": len(unique),
        "selected": len(chosen),
        "min_chars": lo,
        "max_chars": hi,
        "selection": "whitespace collapsed, exact duplicates dropped, smallest SHA-256 of the text first",
        "sha256": corpus.sha256,
    }
    return Corpus(corpus.texts, corpus.sources, provenance)


def directory_corpus(directory: str | os.PathLike, count: int | None = None, min_chars: int = 1) -> Corpus:
    """Texts from the ``*.txt`` files of a folder: each blank-line separated paragraph is one text.

    Files are read in name order (UTF-8), paragraphs whitespace-normalized, exact duplicates
    and paragraphs shorter than ``min_chars`` dropped; the first ``count`` are kept.

    Parameters
    ----------
    directory : path
        A folder with at least one non-empty ``.txt`` file.
    count : int, optional
        Keep at most this many texts.
    min_chars : int
        Shortest paragraph kept, ``>= 1``.

    Returns
    -------
    Corpus
        Sources ``"file.txt#k"`` (k-th paragraph); provenance with the folder, files and ``sha256``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> tmp = tempfile.TemporaryDirectory()
    >>> _ = pathlib.Path(tmp.name, "a.txt").write_text("First  paragraph.\\n\\nSecond one.\\n")
    >>> directory_corpus(tmp.name).sources
    ('a.txt#0', 'a.txt#1')
    >>> tmp.cleanup()
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise InputError(f"directory: got {str(directory)!r}; expected an existing folder of .txt files")
    limit = None if count is None else check_int(count, "count", minimum=1)
    lo = check_int(min_chars, "min_chars", minimum=1)
    files = sorted(p for p in folder.iterdir() if p.suffix == ".txt" and p.is_file())
    texts: dict[str, str] = {}
    for path in files:
        paragraphs = path.read_text(encoding="utf-8").replace("\r\n", "\n").split("\n\n")
        for k, para in enumerate(p for p in paragraphs if p.strip()):
            text = _normalize(para)
            if len(text) >= lo and text not in texts:
                texts[text] = f"{path.name}#{k}"
    if not texts:
        raise InputError(f"directory: got {str(directory)!r}; it has no .txt paragraph of >= {lo} characters")
    chosen = list(texts)[:limit]
    corpus = Corpus(tuple(chosen), tuple(texts[t] for t in chosen))
    provenance = {"source": "text files", "root": str(folder.resolve()), "files": len(files),
                  "selected": len(chosen), "sha256": corpus.sha256}
    return Corpus(corpus.texts, corpus.sources, provenance)
