"""What the capture hides: secrets a firmware must never get into a log, and where it printed them.

Two places could show a secret in pieces, and both are closed here:

- the unfinished last line (``unfinished``), shown by timeouts and waits before its newline
  came: a secret only partly received so far is not whole yet, so its received start is masked
  as well as every whole secret;
- the cut of an over-long line (``safe_cut``): a cut is moved back to the start of a secret
  that spans it, so each piece is redacted whole and no piece carries a fragment.

Secrets of any length are hidden, one character long included: hiding too much on the console
is the safe side, and the secrets audit says on its own when a secret is too short for it to
vouch for (``rig.evidence.secrets_audit``).
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# What a secret is called when the caller gave only its value.
UNNAMED_SECRET = "secret"
# What stands for a secret in every line the capture keeps.
REDACTED = "***"


@dataclass(frozen=True)
class SecretSighting:
    """A line in which the board printed a secret: its capture index, its arrival, and the
    secret's name (``wifi_password``, ``broker_password``...), never its value."""

    index: int
    t: float
    key: str


class Redactor:
    """The secrets of one capture and every line that carried one.

    Not thread-safe: the capture calls it under its own lock.
    """

    def __init__(self) -> None:
        # (value, name), longest value first so that a secret containing another is hidden whole.
        self.secrets: list[tuple[str, str]] = []
        self.sightings: list[SecretSighting] = []
        # The secrets' UTF-8 bytes, for cutting raw console bytes, longest first.
        self._encoded: list[bytes] = []

    @property
    def carry(self) -> int:
        """How many bytes past a cut must have arrived before the cut can be made safely: the
        longest secret's length in bytes minus one (0 without secrets)."""
        return max(len(self._encoded[0]) - 1, 0) if self._encoded else 0

    def add(self, secrets: Mapping[str, str] | Iterable[str]) -> None:
        """Add ``{name: value}`` secrets, or bare values (named ``UNNAMED_SECRET`` until a name
        is given for the same value)."""
        named = (
            list(secrets.items()) if isinstance(secrets, Mapping) else [(UNNAMED_SECRET, s) for s in secrets]
        )
        known = dict(self.secrets)
        for key, value in named:
            if value and (value not in known or known[value] == UNNAMED_SECRET):
                known[value] = key
        self.secrets = sorted(known.items(), key=lambda item: len(item[0]), reverse=True)
        self._encoded = sorted((value.encode("utf-8") for value in known), key=len, reverse=True)

    def safe_cut(self, data: bytes, at: int) -> int:
        """Where to cut ``data`` (an over-long line) at ``at`` or before, so that no secret
        spans the cut: ``at``, or the start of the earliest secret that spans it (again, until
        none does). ``data`` must hold ``carry`` bytes past ``at``, so that a secret starting
        before the cut is whole in it. A secret longer than ``at`` itself cannot fit in a piece:
        the cut stays (no line can show it whole anyway, nor can the redactor find it)."""
        cut = at
        moved = True
        while moved:
            moved = False
            for secret in self._encoded:
                # A secret spanning the cut starts after ``cut - len`` and before ``cut``, and
                # ends at most ``len - 1`` bytes after it.
                start = data.find(secret, max(cut - len(secret) + 1, 0), cut + len(secret) - 1)
                if 0 < start < cut:
                    cut, moved = start, True
        return cut

    def unfinished(self, raw: bytes) -> str:
        """The unfinished last line ``raw`` as it may be shown: decoded, every whole secret
        replaced by ``REDACTED``, and its end masked by ``REDACTED`` where it is the start of
        a secret (which the next bytes may complete). An incomplete UTF-8 sequence at the end is
        held back: it is not a character yet. Records no sighting: the line is recorded once,
        when it is finished."""
        text = codecs.getincrementaldecoder("utf-8")("backslashreplace").decode(raw, final=False)
        if not self.secrets:
            return text
        for secret, _key in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        held = max(_started(text, secret) for secret, _key in self.secrets)
        return text[: len(text) - held] + REDACTED if held else text

    def hide(self, texts: list[str], first: int, t_first: float, t_rest: float) -> list[str]:
        """``texts`` (the lines ``first``, ``first + 1``... arriving at ``t_first``, then
        ``t_rest``) with every secret replaced by ``REDACTED``, each sighting recorded. One
        search of the whole chunk first: a chunk that carries no secret is the common case, and
        a secret inside a line is inside the chunk."""
        if not self.secrets:
            return texts
        whole = "\n".join(texts)
        if not any(secret in whole for secret, _ in self.secrets):
            return texts
        hidden = []
        for i, text in enumerate(texts):
            for secret, key in self.secrets:
                if secret in text:
                    text = text.replace(secret, REDACTED)
                    self.sightings.append(SecretSighting(first + i, t_rest if i else t_first, key))
            hidden.append(text)
        return hidden


def _started(text: str, secret: str) -> int:
    """The length of the longest end of ``text`` that is a start of ``secret`` but not all of
    it (0 if none): the part of a secret received so far."""
    first = secret[0]
    i = text.find(first, max(len(text) - len(secret) + 1, 0))
    while i >= 0:
        if secret.startswith(text[i:]):
            return len(text) - i
        i = text.find(first, i + 1)
    return 0
