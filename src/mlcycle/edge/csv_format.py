"""How a CSV file is written: its encoding and its delimiter, as people save them.

Excel in much of Europe writes ``;``, some tools write tabs, and older Windows files are cp1252
or latin-1 rather than UTF-8. Training (``mlcycle.tables.read``) and predict.py on a device read
a file through these functions, so both read it the same way. Standard library only.
"""

from __future__ import annotations

import codecs
import csv
from pathlib import Path

# Tried in this order: the first that decodes the whole file strictly is its encoding.
# latin-1 decodes any bytes, so it is the last word.
ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")
DELIMITERS = (",", ";", "\t", "|")
NAMED_DELIMITERS = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
SAMPLE_BYTES = 64 * 1024  # the first lines the delimiter is guessed from
_CHUNK = 1 << 20


def _decodes(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def detect_encoding(path: Path) -> str:
    """``utf-8-sig`` (UTF-8, with or without a BOM), else ``cp1252``, else ``latin-1``: the
    first that decodes every byte of the file."""
    return next(e for e in ENCODINGS if e == ENCODINGS[-1] or _decodes(path, e))


def delimiter_name(delimiter: str) -> str:
    """A delimiter as a person names it on a command line: ``tab`` and ``\\t`` are a tab."""
    return NAMED_DELIMITERS.get(delimiter.lower(), delimiter)


def _lines(sample: str) -> list[str]:
    lines = sample.splitlines()
    if len(sample) >= SAMPLE_BYTES // 2 and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut
    return [line for line in lines if line.strip()]


def _score(lines: list[str], delimiter: str) -> tuple[bool, bool, int]:
    """(every row has the header's width, the header splits, the header's width)."""
    rows = list(csv.reader(lines, delimiter=delimiter))
    width = len(rows[0]) if rows else 0
    return all(len(r) == width for r in rows), width > 1, width


def sniff_delimiter(sample: str) -> str:
    """The delimiter of a CSV file's first lines: ``csv.Sniffer``'s guess when the header splits
    on it and every row has the header's width, else the candidate (``,`` ``;`` tab ``|``) that
    splits the header widest with rows of equal width; ``,`` for a one-column file."""
    lines = _lines(sample)
    if not lines:
        return ","
    order = list(DELIMITERS)
    try:
        guess = csv.Sniffer().sniff("\n".join(lines), delimiters="".join(DELIMITERS)).delimiter
        order.remove(guess)
        order.insert(0, guess)
    except csv.Error:
        pass
    scores = {d: _score(lines, d) for d in order}
    best = max(order, key=lambda d: scores[d])  # max keeps the first of equals: the guess
    return best if scores[best][1] else ","


def csv_format(
    path: Path, delimiter: str | None = None, encoding: str | None = None
) -> tuple[str, str]:
    """``(delimiter, encoding)`` of the CSV file at ``path``: the ones given, else detected.
    Raises ``LookupError`` for an unknown encoding, ``UnicodeDecodeError`` when the given one
    does not read the file's first lines, and ``OSError``."""
    encoding = encoding or detect_encoding(path)
    codecs.lookup(encoding)
    if delimiter:
        return delimiter_name(delimiter), encoding
    with path.open("rb") as fh:
        head = fh.read(SAMPLE_BYTES)
    sample = codecs.getincrementaldecoder(encoding)(errors="strict").decode(head)
    return sniff_delimiter(sample), encoding


def header_duplicates(header: list[str]) -> list[str]:
    """The names a header row holds more than once, in order."""
    seen: set[str] = set()
    twice = [name for name in header if name in seen or seen.add(name)]
    return list(dict.fromkeys(twice))
