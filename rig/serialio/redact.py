"""What the capture hides: secrets a firmware must never get into a log, and where it printed them."""

from __future__ import annotations

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
