"""Evaluation manifests: lines of ``audio_path<TAB>reference``, paths relative to the manifest."""

from __future__ import annotations

from pathlib import Path


class ManifestError(ValueError):
    """A manifest that cannot be read or has a malformed line (the message names it)."""


def read_manifest(path: Path) -> list[tuple[Path, str]]:
    """Parse a manifest; blank lines and ``#`` comments are skipped.

    Returns:
        ``(audio_path, reference)`` pairs, audio paths resolved against the manifest's folder.

    Raises:
        ManifestError: unreadable file, a line without a tab, or no audio at all.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read manifest: {exc}") from exc
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        audio, sep, reference = line.partition("\t")
        if not sep:
            raise ManifestError(f"line {number}: expected audio_path<TAB>reference")
        rows.append((Path(path).parent / audio.strip(), reference.strip()))
    if not rows:
        raise ManifestError("the manifest lists no audio")
    return rows
