"""The secrets audit: is any secret the run used written anywhere in what the run left behind?

At the end of a run every artifact (serial logs, MQTT traces, broker logs, timelines, run.json,
JUnit XML, the HTML report and its assets, deploy records) is searched for every secret the run
used (Wi-Fi password, broker passwords, the TLS keys' bodies). A hit is a ``Leak``: the file,
the secret's *key* (``broker_password[board-virtual]``), the form it was written in and the
byte offset of the first hit. No message, repr, warning or exception of this module holds a
secret's value.

Usage::

    leaks = audit_artifacts([run_folder, report_folder], secrets)   # list[Leak]
    check_artifacts([run_folder], secrets, skip=[run_folder / "flash"])  # raises SecretsLeaked

What is searched
----------------
Every regular file under each root, found without following symlinks: a symlink, whether it
points inside the root (its target is audited on its own) or out of it (not ours), is never
followed; FIFOs, sockets and devices are never opened. A file reached twice (overlapping roots,
hard links) is audited once. ``skip`` names files or folders (resolved like any path) left out.

Compressed files are looked into: a file (or archive member) whose first bytes are gzip's magic
is searched once as it is and once decompressed (so ``.gz`` and ``.tar.gz`` are covered: a tar
stores its members' bytes as they are); a zip archive is searched as it is and member by member,
decompressed. Nesting is followed three levels deep. A zip inside a gzip cannot be opened (a zip
is read from its end, a gzip stream cannot seek there) and, like any archive that does not
decompress, is reported as not audited.

The forms of each secret
------------------------
How the rig's artifacts encode text, so how a leaked secret looks there:

=========================  ================================================================
``plain``                  the UTF-8 bytes (logs, PEM files, any text)
``hex``                    the UTF-8 bytes in hex, upper, lower or mixed case (the firmware's
                           ``@rig`` event lines carry payloads in hex; so do timelines)
``repr-escaped``           ``repr(value)[1:-1]``: a Python repr in a failure message
``json-escaped``           ``json.dumps(value)[1:-1]``, with and without ``ensure_ascii``, and
                           Jinja2's ``tojson`` (``<>&'`` as ``\\u003c``...): JSONL traces,
                           run.json, timelines, scripts in the report; also on top of the repr
                           (``repr-escaped+json-escaped``: a failure message in run.json)
``html-escaped``           markupsafe's escape (the report is Jinja2-autoescaped), ``html.escape``
                           and XML text and attribute escaping (JUnit XML); also on top of the
                           forms above (``repr-escaped+json-escaped+html-escaped``...)
``url-encoded``            ``quote(value, safe="")``, ``quote(value)``, ``quote_plus(value)``
``base64``/``base64url``   the part of the encoding that is the same wherever the secret sits
                           in the encoded data: a secret starting at a byte offset ``k`` shifts
                           by ``k % 3``, and for each of the three shifts the characters that
                           encode only the secret's bits are searched (``ceil(8*s/6)`` to
                           ``floor(8*(s+n)/6)`` of the encoding of ``s`` zero bytes plus it)
=========================  ================================================================

A form is searched only when it differs from the forms above it. Not found: a secret broken by
a line break (a 76-column MIME body), encrypted or otherwise transformed.

Short secrets
-------------
A secret shorter than ``MIN_SECRET_CHARS`` characters (a 4-digit PIN as a Wi-Fi password) can
occur by chance, so the audit cannot vouch for it either way, and says so; it neither skips it
silently nor refuses it (the capture hides it on the console all the same):

- it is searched as written: its plain and text-escaped forms whatever their length, its hex
  form where that is ``MIN_SECRET_CHARS`` long; every hit is a ``Leak`` with ``possible`` set
  (and ``POSSIBLE`` in its form), reported like any leak (file, setting, form), for a person to
  look at;
- its base64 forms are not searched (a few characters that any base64 data holds);
- the audit is incomplete: ``audit_artifacts`` raises ``AuditIncomplete`` naming the setting
  (``too_short`` lists them), never clean. The setting is among the ``unaudited``
  (``Unaudited.short_secret``), beside the files that could not be read, so that whoever takes
  an unread file for "not clean" (``rig.evidence.run_audit``, the gate) takes it so too. The
  remedy is a longer secret.

Serial logs, line by line and joined
------------------------------------
A serial log (``serial.log``, ``session.log``: a file whose first line starts with the capture's
arrival stamp, ``2026-12-06T04:22:35.123456 ``) is searched a second time with its lines joined,
every line break and the stamp after it taken out: a secret printed across two lines is whole
there. The capture cuts a line longer than its ``LONGEST_LINE`` in pieces, never through a
secret it knows, but a secret it was not told of (another board's password, a TLS key) may be
cut; a firmware may break a secret over two lines itself. Such a hit is reported with
``ACROSS_LINES`` in its form, at its offset in the joined text. This doubles the time spent on
serial logs; other files are not joined (a line break in a JSON string is ``\n``).

How it searches
---------------
Files are read in chunks of ``CHUNK_BYTES``; each chunk is searched together with the last
bytes of the one before (the longest form minus one), so a secret across a chunk border is found
and a file of any size costs a few chunks of memory. A form found in a file is searched no
further there; once all are found the rest of the file is not read.

Why not one regular expression: no multi-pattern library is installed (pyahocorasick,
ahocorasick-rs, google-re2 are no dependencies of the rig), and ``re`` has no Aho-Corasick
automaton: an alternation of ~130 literal needles over bytes tries them one by one at each
position and ran at 5-23 MB/s here. This module runs CPython's C substring search
(``bytes.find``, several GB/s on a chunk in cache) once per needle per chunk, and keeps the
needles few:

- each chunk is folded once (``A-Z`` to ``a-z``, ``-_`` to ``+/``): hex in any case is one
  needle, and a secret's ``base64`` and ``base64url`` forms are one;
- forms whose folded bytes share their first ``PREFIX_BYTES`` are one needle, the start they
  share (a secret's text forms differ only from its first escaped character on);
- each hit of a needle is checked on the original bytes, form by form, so neither folding nor
  sharing reports what is not there.

Measured on the development machine (one core busy), a 200 MB log-like file: 89 MB/s with a
rig-like set of 11 secrets (8 broker passwords, the Wi-Fi password, 2 TLS key bodies: 55
needles), 52 MB/s with 20 such secrets, 39 MB/s with 20 secrets of which 5 hold ``" \\ < &``.
A serial log is searched twice (its lines, then joined): a 100 MB one with 9 secrets, 120 MB/s
for its lines alone, 59 MB/s both passes.
"""

from __future__ import annotations

import gzip
import html
import json
import os
import re
import stat
import urllib.parse
import zipfile
import zlib
from base64 import b64encode, urlsafe_b64encode
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from markupsafe import escape as markup_escape

from rig.errors import RigError

# Shorter secrets would be found by chance in hex dumps and base64 data.
MIN_SECRET_CHARS = 6
CHUNK_BYTES = 1 << 20
# Archives inside archives are followed this deep (a .tar.gz in a .zip is two levels).
MAX_ARCHIVE_DEPTH = 3
# Forms whose folded bytes start with the same PREFIX_BYTES are searched in one pass (the text
# forms of a secret differ only from its first escaped character on); long enough that its
# start alone rarely occurs where the whole form does not.
PREFIX_BYTES = 10
# Hits of a needle's start that no form confirmed, per chunk, before its forms are searched one
# by one instead.
MAX_UNCONFIRMED = 64

GZIP_MAGIC = b"\x1f\x8b"
# How the capture writes a serial log line (rig.serialio.lines.format_line): the arrival stamp,
# local ISO time to the microsecond, a space, the text. Kept in step with it by a test.
_STAMP = rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6} "
_SERIAL_LOG_START = re.compile(_STAMP)
_LINE_BREAK = re.compile(rb"\n" + _STAMP)
_LINE_BREAK_BYTES = 28  # what _LINE_BREAK matches: newline, 26 for the stamp, space
HEAD_BYTES = _LINE_BREAK_BYTES
# Said in the form of a hit in a serial log's joined lines.
ACROSS_LINES = "across serial log lines"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")

_UPPER = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
FOLD = bytes.maketrans(_UPPER + b"-_", _UPPER.lower() + b"+/")


class _Readable(Protocol):
    """What the search needs of what it reads."""

    def read(self, size: int = -1, /) -> bytes: ...


class _Stream(_Readable, Protocol):
    """What the audit needs of a file, a gzip stream or a zip member."""

    def seek(self, offset: int, whence: int = 0, /) -> int: ...
    def tell(self) -> int: ...


@dataclass(frozen=True)
class Leak:
    """One secret found in one file: the first hit of one form of it. Holds no value.
    ``possible``: the secret is shorter than ``MIN_SECRET_CHARS``, so the hit may be chance;
    its ``form`` says so too (``"plain; possible leak: ..."``)."""

    path: Path  # the file, relative to ``root`` when inside it (a root that is a file: as given)
    key: str  # the secret's name, e.g. "broker_password[board-virtual]"
    form: str  # how it was written: "plain", "hex", "json-escaped", "base64", ...
    offset: int  # byte offset of the first hit, in the member's decompressed bytes if ``member``
    member: str = ""  # inside an archive: "serial.log" of serial.log.gz, "a.tar!x.log" nested
    root: Path | None = None  # the audited root, as the caller gave it
    possible: bool = False

    @property
    def where(self) -> str:
        """``root/path`` and the archive member after a ``!``: what a person opens."""
        shown = str(self.root / self.path if self.root is not None else self.path)
        return f"{shown}!{self.member}" if self.member else shown

    def __str__(self) -> str:
        return f"{self.where}: {self.key} ({self.form}) at byte {self.offset}"


@dataclass(frozen=True)
class Unaudited:
    """What the audit cannot vouch for: a file, archive member or root that could not be read
    to its end, or a secret too short to tell a leak from chance (``short_secret``: ``path`` is
    then the secret's key, so that ``path: reason`` reads right wherever it is shown).
    ``reason`` is an error's name or ``strerror`` or the short secret's, never content."""

    path: Path
    member: str
    reason: str
    root: Path | None = None

    @classmethod
    def short_secret(cls, key: str) -> Unaudited:
        return cls(Path(key), "", _NOT_VOUCHED)

    def __str__(self) -> str:
        shown = str(self.root / self.path if self.root is not None else self.path)
        return f"{shown}{'!' + self.member if self.member else ''}: {self.reason}"


# Said in a short secret's ``Leak.form``, so that every reader that shows the form says it too.
POSSIBLE = f"possible leak: secret under {MIN_SECRET_CHARS} characters"
_NOT_VOUCHED = (
    f"secret shorter than {MIN_SECRET_CHARS} characters, so not fully audited (searched as "
    f"written, where a hit may be chance; not in base64): use a longer secret"
)


class SecretsLeaked(RigError):
    """Secrets were found in the artifacts. ``leaks`` says where; the message names each file
    and key, never a value. ``unaudited`` says what the audit could not cover (files it could
    not read, secrets too short to vouch for), for the report."""

    SHOWN = 50  # leaks listed in the message; all are in ``leaks``

    def __init__(self, leaks: list[Leak], unaudited: Iterable[Unaudited] = ()) -> None:
        self.leaks = list(leaks)
        self.unaudited = list(unaudited)
        keys = sorted({leak.key for leak in self.leaks})
        files = {leak.where for leak in self.leaks}
        lines = [f"  - {leak}" for leak in self.leaks[: self.SHOWN]]
        if len(self.leaks) > self.SHOWN:
            lines.append(f"  ... and {len(self.leaks) - self.SHOWN} more")
        lines += [f"  not audited: {u}" for u in self.unaudited]
        super().__init__(
            f"secrets {', '.join(keys)} found in {len(files)} artifact file(s) "
            f"(the values are not shown):\n" + "\n".join(lines)
        )


class AuditIncomplete(RigError):
    """The audit cannot say the artifacts are clean: some could not be read to their end
    (``unaudited``), or some secrets are too short to tell a leak from chance (``too_short``,
    their keys). ``leaks`` holds what was found nonetheless, possible leaks of short secrets
    among them (``check_artifacts`` raises ``SecretsLeaked`` instead when there is any)."""

    def __init__(
        self, unaudited: list[Unaudited], leaks: Iterable[Leak] = (), too_short: Iterable[str] = ()
    ) -> None:
        self.too_short = list(too_short)
        self.unaudited = list(unaudited) + [Unaudited.short_secret(key) for key in self.too_short]
        self.leaks = list(leaks)
        lines = "\n".join(f"  - {u}" for u in self.unaudited)
        found = f"\n  and {len(self.leaks)} leak(s) found" if self.leaks else ""
        super().__init__(f"secrets audit incomplete: {len(self.unaudited)} not audited\n{lines}{found}")


def too_short(secrets: Mapping[str, str]) -> list[str]:
    """The keys of the secrets the audit cannot vouch for (shorter than ``MIN_SECRET_CHARS``),
    sorted. An empty value is no secret: there is nothing to leak."""
    return sorted(key for key, value in secrets.items() if 0 < len(value) < MIN_SECRET_CHARS)


def audit_artifacts(
    roots: Iterable[Path],
    secrets: Mapping[str, str],
    *,
    skip: Iterable[Path] = (),
    chunk_bytes: int = CHUNK_BYTES,
) -> list[Leak]:
    """Every leak under ``roots``, in root order, then by file path and offset.

    Raises ``AuditIncomplete`` when a root is missing, a file or archive could not be read to
    its end (a file that vanishes during the audit is not an artifact any more and is passed
    over), or a secret is too short to vouch for (see "Short secrets"); its ``leaks`` are what
    was found. ``chunk_bytes`` is for tests that put a secret across many chunk borders.
    """
    leaks, unaudited = _audit(roots, secrets, skip, chunk_bytes)
    short = too_short(secrets)
    # pytest shows the arguments (and with -l the locals) of every frame of a failure's
    # traceback: the values must not be among this frame's.
    del secrets
    if unaudited or short:
        raise AuditIncomplete(unaudited, leaks, short)
    return leaks


def check_artifacts(
    roots: Iterable[Path],
    secrets: Mapping[str, str],
    *,
    skip: Iterable[Path] = (),
    chunk_bytes: int = CHUNK_BYTES,
) -> None:
    """Raise ``SecretsLeaked`` when any secret is found under ``roots`` (even where some file
    could not be read, possible leaks of short secrets included), ``AuditIncomplete`` when none
    is but some file could not be read or some secret is too short to vouch for."""
    leaks, unaudited = _audit(roots, secrets, skip, chunk_bytes)
    short = too_short(secrets)
    del secrets  # not shown in a traceback (see audit_artifacts)
    if leaks:
        raise SecretsLeaked(leaks, unaudited + [Unaudited.short_secret(key) for key in short])
    if unaudited or short:
        raise AuditIncomplete(unaudited, too_short=short)


# -- the forms ---------------------------------------------------------------------------------


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _xml_attribute(text: str) -> str:
    # What ElementTree writes in an attribute (pytest's JUnit XML "message").
    return _xml_text(text).replace('"', "&quot;").replace("\n", "&#10;")


def _tojson(text: str) -> str:
    # Jinja2's ``tojson``: JSON made safe for HTML by escaping the characters HTML reads.
    inner = json.dumps(text)[1:-1]
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("'", "\\u0027")):
        inner = inner.replace(char, escaped)
    return inner


_HTML_ESCAPES: tuple[Callable[[str], str], ...] = (
    lambda text: str(markup_escape(text)),
    html.escape,
    _xml_text,
    _xml_attribute,
)


def _text_forms(value: str) -> list[tuple[str, str]]:
    """Escapes in the order writers stack them: a repr (a failure message) goes into JSON
    (run.json), either goes into HTML (the report)."""
    forms = [("plain", value), ("repr-escaped", repr(value)[1:-1])]
    for name, text in list(forms):
        layered = "json-escaped" if name == "plain" else f"{name}+json-escaped"
        forms += [
            (layered, json.dumps(text)[1:-1]),
            (layered, json.dumps(text, ensure_ascii=False)[1:-1]),
            (layered, _tojson(text)),
        ]
    for name, text in list(forms):
        layered = "html-escaped" if name == "plain" else f"{name}+html-escaped"
        forms += [(layered, escape(text)) for escape in _HTML_ESCAPES]
    quote, quote_plus = urllib.parse.quote, urllib.parse.quote_plus
    forms += [("url-encoded", q) for q in (quote(value, safe=""), quote(value), quote_plus(value))]
    return forms


def _base64_middles(data: bytes, encode: Callable[[bytes], bytes]) -> list[bytes]:
    """For each of the three shifts, the encoded characters that depend on ``data`` only."""
    middles = []
    for shift in range(3):
        encoded = encode(b"\0" * shift + data)
        middles.append(encoded[-(-8 * shift // 6) : 8 * (shift + len(data)) // 6])
    return middles


def _forms(value: str) -> list[tuple[str, bytes, bool]]:
    """(form name, bytes, any case) of every way ``value`` is searched, first name per bytes.
    An encoded form shorter than ``MIN_SECRET_CHARS`` is left out (a few hex or base64
    characters occur in any such data); the text forms are kept whatever their length, so that
    a short secret is searched as written."""
    data = value.encode("utf-8")
    forms = [(name, text.encode("utf-8"), False) for name, text in _text_forms(value)]
    kept = len(forms)
    forms.append(("hex", data.hex().encode("ascii"), True))
    forms += [("base64", m, False) for m in _base64_middles(data, b64encode)]
    forms += [("base64url", m, False) for m in _base64_middles(data, urlsafe_b64encode)]
    seen: set[bytes] = set()
    unique = []
    for i, (name, needle, any_case) in enumerate(forms):
        if needle and needle not in seen and (i < kept or len(needle) >= MIN_SECRET_CHARS):
            seen.add(needle)
            unique.append((name, needle, any_case))
    return unique


@dataclass(frozen=True, repr=False)
class _Form:
    id: int
    key: str
    name: str
    needle: bytes
    folded: bytes
    any_case: bool  # hex: equal once folded is enough
    possible: bool  # a short secret's: a hit may be chance

    def at(self, window: bytes, folded: bytes, i: int) -> bool:
        if self.any_case:
            return folded.startswith(self.folded, i)
        return window.startswith(self.needle, i)

    def find(self, window: bytes, folded: bytes, start: int) -> int:
        return folded.find(self.folded, start) if self.any_case else window.find(self.needle, start)


@dataclass(frozen=True, repr=False)
class _Needle:
    """Forms (of one or more secrets) whose folded bytes start alike: searched in one pass."""

    folded: bytes  # the start every form's folded bytes share, at least PREFIX_BYTES long
    forms: tuple[_Form, ...]


class _Needles:
    """Every secret's forms, grouped by the start of their folded bytes. Its repr says how many,
    never what."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        groups: dict[bytes, list[_Form]] = {}
        count = 0
        for key, value in secrets.items():
            short = len(value) < MIN_SECRET_CHARS
            for name, needle, any_case in _forms(value):
                folded = needle.translate(FOLD)
                form = _Form(count, key, name, needle, folded, any_case, short)
                groups.setdefault(folded[:PREFIX_BYTES], []).append(form)
                count += 1
        # Searched for: the longest start the group's forms share (a longer needle is a faster
        # search), the whole form when it is alone.
        self.needles = [
            _Needle(_common_start([f.folded for f in forms]), tuple(forms)) for forms in groups.values()
        ]
        self.forms = {form.id: form for needle in self.needles for form in needle.forms}
        self.overlap = max((len(form.needle) for form in self.forms.values()), default=1) - 1

    def __repr__(self) -> str:
        return f"<_Needles: {len(self.needles)} needles, {len(self.forms)} forms>"


def _common_start(items: list[bytes]) -> bytes:
    first, last = min(items), max(items)  # the sorted extremes share what all share
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


# -- the search --------------------------------------------------------------------------------


def _search(needle: _Needle, window: bytes, folded: bytes, base: int, found: dict[int, int]) -> bool:
    """Record in ``found`` (form id -> file offset) the first hit in ``window`` of each form of
    ``needle`` not found yet; True when every form of it is found."""
    missing = [form for form in needle.forms if form.id not in found]
    unconfirmed = 0
    i = folded.find(needle.folded)
    while i >= 0 and missing:
        hits = [form for form in missing if form.at(window, folded, i)]
        for form in hits:
            found[form.id] = base + i
        if hits:
            missing = [form for form in missing if form.id not in found]
        else:
            unconfirmed += 1
            if unconfirmed > MAX_UNCONFIRMED:
                # The shared start occurs far more often than any whole form (a file of
                # "AAAA..." against "aaaaaa"): search each form on its own.
                for form in missing:
                    j = form.find(window, folded, i)
                    if j >= 0:
                        found[form.id] = base + j
                return all(form.id in found for form in needle.forms)
        i = folded.find(needle.folded, i + 1)
    return not missing


def _scan(stream: _Readable, needles: _Needles, chunk_bytes: int, found: dict[int, int]) -> None:
    """Search ``stream`` from where it is to its end (or until every needle is found). A read
    that fails (a truncated gzip) raises, after what it read is searched."""
    read: Callable[[int], bytes] = getattr(stream, "read1", stream.read)
    active = list(needles.needles)
    tail = b""
    base = 0  # file offset of the window's first byte
    while active:
        chunk, failure = _read_chunk(read, chunk_bytes)
        if chunk:
            window = tail + chunk if tail else chunk
            folded = window.translate(FOLD)
            active = [n for n in active if not _search(n, window, folded, base, found)]
            keep = min(len(window), needles.overlap)
            base += len(window) - keep
            tail = window[len(window) - keep :]
        if failure is not None:
            raise failure
        if not chunk:
            return


class _JoinedLines:
    """A serial log read with its lines joined: each line break and the stamp after it taken
    out (``_LINE_BREAK``). A read's last bytes that may be the start of a line break and its
    stamp are held back for the next read, so a stamp is never split; a read returns nothing
    only at the end."""

    def __init__(self, stream: _Stream) -> None:
        self._stream = stream
        self._held = b""

    def read(self, size: int = -1, /) -> bytes:
        while True:
            data = self._stream.read(size if size > 0 else CHUNK_BYTES)
            if not data:  # the end: what is held is no stamp's start any more
                data, self._held = self._held, b""
                return _LINE_BREAK.sub(b"", data)
            data = self._held + data
            cut = data.rfind(b"\n", max(len(data) - _LINE_BREAK_BYTES + 1, 0))
            data, self._held = (data[:cut], data[cut:]) if cut >= 0 else (data, b"")
            joined = _LINE_BREAK.sub(b"", data)
            if joined:
                return joined


# What reading a file, a gzip stream or a zip member may raise: OSError (BadGzipFile among
# them), EOFError (truncated), zlib.error, BadZipFile (corrupt, bad CRC), RuntimeError
# (encrypted), NotImplementedError (unknown compression), ValueError (a zip in a gzip: no seek
# from the end).
_READ_ERRORS = (
    OSError,
    EOFError,
    zlib.error,
    zipfile.BadZipFile,
    RuntimeError,
    NotImplementedError,
    ValueError,
)


def _read_chunk(read: Callable[[int], bytes], size: int) -> tuple[bytes, Exception | None]:
    """Up to ``size`` bytes, short only at the end; with the error that ended it early, if any.
    Read in pieces (``read1`` where there is one) so that a decompressor failing mid-chunk
    still hands over what it decompressed before."""
    pieces: list[bytes] = []
    got = 0
    try:
        while got < size:
            piece = read(size - got)
            if not piece:
                break
            pieces.append(piece)
            got += len(piece)
    except _READ_ERRORS as exc:
        return b"".join(pieces), exc
    return b"".join(pieces), None


# -- the walk ----------------------------------------------------------------------------------


class _Audit:
    """One audit: the walk, the files seen (by inode), the leaks and what could not be read."""

    def __init__(self, needles: _Needles, skip: set[Path], chunk_bytes: int) -> None:
        self.needles = needles
        self.skip = skip
        self.chunk_bytes = chunk_bytes
        self.seen: set[tuple[int, int]] = set()
        self.leaks: list[Leak] = []
        self.unaudited: list[Unaudited] = []

    def __repr__(self) -> str:
        return f"<secrets audit: {len(self.leaks)} leaks, {len(self.unaudited)} unaudited>"

    def root(self, given: Path) -> None:
        real = given.resolve()
        if real in self.skip or any(parent in self.skip for parent in real.parents):
            return
        try:
            mode = os.stat(real).st_mode
        except OSError as exc:
            self.unaudited.append(Unaudited(given, "", exc.strerror or type(exc).__name__))
            return
        first = len(self.leaks)
        if stat.S_ISDIR(mode):
            for path in self._files(real, given):
                self.file(path, path.relative_to(real), given)
        else:
            self.file(real, given, None)
        self.leaks[first:] = sorted(self.leaks[first:], key=lambda leak: (leak.path.parts, leak.member))

    def _files(self, folder: Path, given: Path) -> Iterator[Path]:
        """Regular files below ``folder`` in name order, not through any symlink or skip."""
        stack = [folder]
        while stack:
            current = stack.pop()
            try:
                with os.scandir(current) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except FileNotFoundError:
                continue
            except OSError as exc:
                rel = current.relative_to(folder)
                self.unaudited.append(Unaudited(rel, "", exc.strerror or type(exc).__name__, given))
                continue
            subfolders = []
            for entry in entries:
                path = Path(entry.path)
                if entry.is_symlink() or path in self.skip:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    subfolders.append(path)
                elif entry.is_file(follow_symlinks=False):
                    yield path
            stack.extend(reversed(subfolders))

    def file(self, real: Path, shown: Path, root: Path | None) -> None:
        # O_NOFOLLOW: a file swapped for a symlink since the walk is not followed; O_NONBLOCK: one
        # swapped for a FIFO does not hang the open (it is then passed over as not regular).
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(real, flags)
        except FileNotFoundError:
            return
        except OSError as exc:
            self.unaudited.append(Unaudited(shown, "", exc.strerror or type(exc).__name__, root))
            return
        with open(fd, "rb", buffering=0) as stream:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or (info.st_dev, info.st_ino) in self.seen:
                return
            self.seen.add((info.st_dev, info.st_ino))
            self._stream(stream, shown, "", root, shown.name, 0)

    def _stream(
        self, stream: _Stream, shown: Path, member: str, root: Path | None, name: str, depth: int
    ) -> None:
        """Search ``stream`` (seekable, at its start) and, if it is an archive, its contents."""
        found: dict[int, int] = {}
        joined: dict[int, int] = {}
        try:
            head = _read_chunk(stream.read, HEAD_BYTES)[0]
            stream.seek(0)
            _scan(stream, self.needles, self.chunk_bytes, found)
            if _SERIAL_LOG_START.match(head):
                # Only what the lines did not show: a form found in them is found.
                joined.update(found)
                stream.seek(0)
                _scan(_JoinedLines(stream), self.needles, self.chunk_bytes, joined)
        except _READ_ERRORS as exc:
            # A truncated gzip, a corrupt member, a read error: what was read is reported, the
            # rest is not vouched for.
            self._unread(exc, shown, member, root)
            return
        finally:
            self._record(found, shown, member, root)
            across = {form_id: at for form_id, at in joined.items() if form_id not in found}
            self._record(across, shown, member, root, f"; {ACROSS_LINES}")
        if depth >= MAX_ARCHIVE_DEPTH:
            return
        if head.startswith(GZIP_MAGIC):
            inner_name = _gunzipped_name(name)
            inner_member = _join(member, inner_name)
            try:
                stream.seek(0)
                with gzip.GzipFile(fileobj=stream, mode="rb") as inner:
                    self._stream(inner, shown, inner_member, root, inner_name, depth + 1)
            except _READ_ERRORS as exc:
                self._unread(exc, shown, inner_member, root)
        elif head[:4] in ZIP_MAGICS:
            self._zip(stream, shown, member, root, depth)

    def _zip(self, stream: _Stream, shown: Path, member: str, root: Path | None, depth: int) -> None:
        """Each member of a zip, decompressed; one that cannot be read does not stop the rest."""
        try:
            stream.seek(0)
            archive = zipfile.ZipFile(stream)
        except _READ_ERRORS as exc:
            self._unread(exc, shown, member, root)
            return
        with archive:
            for entry in archive.infolist():
                if entry.is_dir():
                    continue
                inner_member = _join(member, entry.filename)
                try:
                    with archive.open(entry) as inner:
                        self._stream(inner, shown, inner_member, root, entry.filename, depth + 1)
                except _READ_ERRORS as exc:  # opening it: encrypted, unknown compression
                    self._unread(exc, shown, inner_member, root)

    def _unread(self, exc: BaseException, shown: Path, member: str, root: Path | None) -> None:
        # The error's name or strerror only: some errors quote the bytes they choked on.
        reason = (exc.strerror if isinstance(exc, OSError) else None) or type(exc).__name__
        self.unaudited.append(Unaudited(shown, member, reason, root))

    def _record(
        self, found: dict[int, int], shown: Path, member: str, root: Path | None, where: str = ""
    ) -> None:
        first: dict[tuple[str, str, bool], int] = {}
        for form_id, offset in found.items():
            form = self.needles.forms[form_id]
            ident = (form.key, form.name + where, form.possible)
            first[ident] = min(offset, first.get(ident, offset))
        leaks = [
            Leak(shown, key, f"{name}; {POSSIBLE}" if possible else name, offset, member, root, possible)
            for (key, name, possible), offset in first.items()
        ]
        # Python's sort is stable: the root's final sort by path keeps this order within a file.
        self.leaks += sorted(leaks, key=lambda leak: (leak.offset, leak.key, leak.form))


def _join(member: str, name: str) -> str:
    return f"{member}!{name}" if member else name


def _gunzipped_name(name: str) -> str:
    if name.endswith(".tgz"):
        return name[:-4] + ".tar"
    if name.endswith(".gz"):
        return name[:-3]
    return f"{name} (gunzipped)"


def _audit(
    roots: Iterable[Path], secrets: Mapping[str, str], skip: Iterable[Path], chunk_bytes: int
) -> tuple[list[Leak], list[Unaudited]]:
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
    audit = _Audit(_Needles(secrets), {Path(p).resolve() for p in skip}, chunk_bytes)
    if audit.needles.needles:
        for root in roots:
            audit.root(Path(root))
    return audit.leaks, audit.unaudited
