"""Harvest English training sentences from text that is on every Debian machine.

Sources: docstrings of the Python standard library and the READMEs, licences
and plain-text documents under ``/usr/share/doc``. Nothing is downloaded.
The IVR prompt texts of ``asterisk-core-sounds-en`` are deliberately *not*
used: they are the showcase for custom language models.
"""

from __future__ import annotations

import argparse
import ast
import gzip
import hashlib
import re
import sysconfig
from collections.abc import Iterable, Iterator
from pathlib import Path

from engine.text import normalize_transcript

MIN_WORDS = 3
MAX_WORDS = 16
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
# Lines that look like code, paths, e-mail or URLs are not speech.
_NOT_PROSE = re.compile(r"[{}<>=_/\\|@#$%^*~`]|\(\)|\.\w+\(|https?:|www\.|\w\.\w")
_WORD = re.compile(r"^[a-z]+(?:'[a-z]+)?$")


def _python_docstrings(root: Path) -> Iterator[str]:
    for path in sorted(root.rglob("*.py")):
        if "test" in path.parts or "site-packages" in path.parts:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc:
                    yield doc


def _doc_files(root: Path) -> Iterator[str]:
    for path in sorted(root.rglob("*")):
        name = path.name.lower()
        if not path.is_file() or "asterisk" in str(path):
            continue
        if not (name.startswith(("readme", "copyright", "news", "changes", "faq")) or name.endswith((".txt", ".txt.gz"))):
            continue
        try:
            raw = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
            yield raw.decode("utf-8")
        except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile):
            continue


def split_sentences(block: str) -> Iterator[str]:
    """Split a block of prose into candidate sentences (paragraph-aware)."""
    for paragraph in re.split(r"\n\s*\n", block):
        flat = " ".join(line.strip() for line in paragraph.splitlines())
        yield from _SENTENCE_END.split(flat)


def clean_sentence(sentence: str) -> str | None:
    """Return the normalised sentence, or None when it is not speakable prose."""
    if _NOT_PROSE.search(sentence) or not sentence[:1].isupper():
        return None
    text = normalize_transcript(sentence)
    words = text.split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS or not all(_WORD.match(w) for w in words):
        return None
    if any(len(w) > 18 for w in words):
        return None
    return text


def harvest(blocks: Iterable[str]) -> list[str]:
    """Clean and de-duplicate sentences, in a stable order."""
    seen: set[str] = set()
    out: list[str] = []
    for block in blocks:
        for sentence in split_sentences(block):
            text = clean_sentence(sentence)
            if text and text not in seen:
                seen.add(text)
                out.append(text)
    return out


def is_held_out(text: str, percent: int = 4) -> bool:
    """Stable text split: a sentence whose sha1 falls in the first `percent` buckets is held out."""
    return int(hashlib.sha1(text.encode()).hexdigest(), 16) % 100 < percent


def main(argv: list[str] | None = None) -> None:
    """Write ``train.txt`` and ``heldout.txt`` sentence lists into ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    sentences = harvest([*_python_docstrings(stdlib), *_doc_files(Path("/usr/share/doc"))])
    args.out.mkdir(parents=True, exist_ok=True)
    train = [s for s in sentences if not is_held_out(s)]
    held = [s for s in sentences if is_held_out(s)]
    (args.out / "train.txt").write_text("\n".join(train) + "\n")
    (args.out / "heldout.txt").write_text("\n".join(held) + "\n")
    print(f"{len(train)} training sentences, {len(held)} held out -> {args.out}")


if __name__ == "__main__":
    main()
