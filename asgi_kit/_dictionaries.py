"""Compression Dictionary Transport (RFC 9842) for :mod:`asgi_kit.compression`.

A :class:`Dictionary` names which responses clients may keep as dictionaries
(``path``) and which later requests may use them (``match``).  The
:class:`DictionaryStore` remembers the dictionaries actually sent, by their
SHA-256, within a memory budget (least recently used go first), and prepares
a ``dcz`` coding for each on first use.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from ._codings import Coding
from ._http import PathMatcher

__all__ = ["Dictionary", "DictionaryStore", "parse_available_dictionary"]

# Characters with a meaning in a URLPattern other than ``*``: refused in
# ``match`` so the browser and the server read the pattern the same way.
_URLPATTERN_SPECIAL = frozenset('?#():{}+\\"')
# Fetch destinations (the Sec-Fetch-Dest values) a match-dest may name.
_TOKEN = re.compile(r"^[a-z][a-z0-9-]*$")
#: A prepared zstd dictionary (CDict) costs about this much beyond its bytes (level 3).
PREPARED_OVERHEAD = 1024 * 1024


def _sf_string(option: str, value: str) -> bytes:
    """``value`` as a structured-field string (RFC 8941 §3.3.3)."""
    if not isinstance(value, str):
        raise TypeError(f"{option} must be a string, got {value!r}")
    if any(not (0x20 <= ord(c) <= 0x7E) for c in value):
        raise ValueError(f"{option}: {value!r} must be printable ASCII")
    return b'"' + value.replace("\\", "\\\\").replace('"', '\\"').encode("ascii") + b'"'


def _match_pattern(match: str) -> str:
    """The URLPattern pathname ``match`` (``*`` wildcards only) as a regex."""
    return ".*".join(re.escape(part) for part in match.split("*")) + r"\Z"


class Dictionary:
    """Responses that clients may keep as compression dictionaries (RFC 9842).

    Args:
        path: Request paths whose ``GET`` responses are dictionaries: an exact
            path or a glob (``/static/app.*.js``), as ``exclude_paths`` takes.
        match: The URL pattern, sent in ``Use-As-Dictionary``, of the later
            requests that may be compressed with such a response: an absolute
            path where ``*`` matches anything (``/static/app.*.js``).
        id: Optional ``id`` sent to the client, which echoes it in
            ``Dictionary-ID`` (at most 1024 characters).
        match_dest: Optional fetch destinations (``"script"``, ``"document"``…)
            the dictionary is limited to (``match-dest``); empty: any.
        max_age: When set, dictionary responses without ``Cache-Control`` get
            ``Cache-Control: max-age=<max_age>``; browsers keep a dictionary
            only as long as its response is fresh in their cache.
        content: The dictionary's bytes, when known in advance (a static
            dictionary): it is known from start-up and never evicted.  The
            response the app sends at ``path`` must have exactly these bytes.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: An argument is malformed.
    """

    __slots__ = (
        "_regex",
        "content",
        "header",
        "id",
        "match",
        "match_dest",
        "match_pattern",
        "max_age",
        "path",
        "paths",
    )

    def __init__(
        self,
        path: str,
        match: str,
        *,
        id: str | None = None,
        match_dest: Iterable[str] = (),
        max_age: int | None = None,
        content: bytes | None = None,
    ) -> None:
        if not isinstance(path, str):
            raise TypeError(f"dictionaries: path must be a string, got {path!r}")
        self.path = path
        self.paths = PathMatcher((path,), "dictionaries: path")
        if not isinstance(match, str):
            raise TypeError(f"dictionaries: match must be a string, got {match!r}")
        if not match.startswith("/") or any(c in _URLPATTERN_SPECIAL for c in match):
            raise ValueError(
                f"dictionaries: match {match!r} must be a path starting with '/' "
                "using only '*' wildcards"
            )
        self.match = match
        #: ``match`` as a regular expression (for ``re.match``).
        self.match_pattern = _match_pattern(match)
        self._regex = re.compile(self.match_pattern)
        parts = [b"match=" + _sf_string("dictionaries: match", match)]
        if isinstance(match_dest, str) or not isinstance(match_dest, Iterable):
            raise TypeError(
                f"dictionaries: match_dest must be a list of strings, not {match_dest!r}"
            )
        self.match_dest = tuple(match_dest)
        for dest in self.match_dest:
            if not isinstance(dest, str) or not _TOKEN.match(dest):
                raise ValueError(f"dictionaries: match_dest {dest!r} is not a fetch destination")
        if self.match_dest:
            inner = b" ".join(_sf_string("dictionaries: match_dest", d) for d in self.match_dest)
            parts.append(b"match-dest=(" + inner + b")")
        if id is not None:
            if isinstance(id, str) and len(id) > 1024:
                raise ValueError("dictionaries: id must be at most 1024 characters")
            parts.append(b"id=" + _sf_string("dictionaries: id", id))
        self.id = id
        if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, int)):
            raise TypeError(f"dictionaries: max_age must be an int, got {max_age!r}")
        if max_age is not None and max_age < 1:
            raise ValueError(f"dictionaries: max_age must be >= 1, got {max_age!r}")
        self.max_age = max_age
        if content is not None and not isinstance(content, (bytes, bytearray, memoryview)):
            raise TypeError(f"dictionaries: content must be bytes, got {type(content).__name__}")
        self.content = None if content is None else bytes(content)
        #: The ``Use-As-Dictionary`` value.
        self.header = b", ".join(parts)

    @classmethod
    def from_file(
        cls,
        file: str | os.PathLike[str],
        path: str,
        match: str,
        **options: Any,
    ) -> Dictionary:
        """A static dictionary read from ``file`` (the bytes the app serves at ``path``)."""
        with open(file, "rb") as f:
            return cls(path, match, content=f.read(), **options)

    def matches(self, path: str, dest: str | None) -> bool:
        """Whether a request for ``path`` (fetch destination ``dest``) may use this dictionary."""
        if self.match_dest and dest not in self.match_dest:
            return False
        return self._regex.match(path) is not None

    def __repr__(self) -> str:
        return f"Dictionary({self.path!r}, {self.match!r})"


def as_dictionaries(option: str, value: Iterable[Any]) -> tuple[Dictionary, ...]:
    """Normalise ``dictionaries=``: ``(path, match)`` pairs and :class:`Dictionary` objects."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"{option} must be a list of (path, match) pairs, got {value!r}")
    out: list[Dictionary] = []
    for item in value:
        if isinstance(item, Dictionary):
            out.append(item)
        elif isinstance(item, tuple) and len(item) == 2:
            out.append(Dictionary(item[0], item[1]))
        else:
            raise TypeError(f"{option}: {item!r} is not a (path, match) pair or a Dictionary")
    return tuple(out)


def parse_available_dictionary(value: bytes) -> bytes | None:
    """The SHA-256 in an ``Available-Dictionary`` value (``:base64:``), or None if malformed."""
    value = value.strip()
    if len(value) != 46 or value[:1] != b":" or value[-1:] != b":":
        return None  # 32 bytes are 44 base64 characters between the colons
    try:
        digest = base64.b64decode(value[1:-1], validate=True)
    except (binascii.Error, ValueError):
        return None
    return digest if len(digest) == 32 else None


class _Entry:
    __slots__ = ("coding", "config", "content", "cost", "digest")

    def __init__(self, digest: bytes, content: bytes, config: Dictionary) -> None:
        self.digest = digest
        self.content = content
        self.config = config
        self.coding: Coding | None = None
        self.cost = len(content)


class DictionaryStore:
    """Dictionaries sent to clients, by SHA-256, within ``memory`` bytes (LRU)."""

    __slots__ = ("_lru", "_static", "level", "memory", "used")

    def __init__(self, configs: Iterable[Dictionary], level: int, memory: int) -> None:
        self.level = level
        self.memory = memory
        self.used = 0
        self._lru: OrderedDict[bytes, _Entry] = OrderedDict()
        self._static: dict[bytes, _Entry] = {}
        for config in configs:
            if config.content is not None:
                digest = hashlib.sha256(config.content).digest()
                self._static[digest] = _Entry(digest, config.content, config)

    def __len__(self) -> int:
        return len(self._lru) + len(self._static)

    def __contains__(self, digest: bytes) -> bool:
        return digest in self._static or digest in self._lru

    def add(self, content: bytes, config: Dictionary) -> bytes:
        """Remember ``content`` as a dictionary declared by ``config``; returns its SHA-256."""
        digest = hashlib.sha256(content).digest()
        if digest in self._static:
            return digest
        entry = self._lru.get(digest)
        if entry is not None:
            entry.config = config
            self._lru.move_to_end(digest)
            return digest
        entry = _Entry(digest, content, config)
        self._lru[digest] = entry
        self.used += entry.cost
        self._evict()
        return digest

    def _evict(self) -> None:
        while self.used > self.memory and self._lru:
            _, old = self._lru.popitem(last=False)
            self.used -= old.cost

    def coding_for(self, digest: bytes, path: str, dest: str | None) -> Coding | None:
        """The ``dcz`` coding for a request naming ``digest``, or None when it may not be used."""
        entry = self._static.get(digest)
        if entry is None:
            entry = self._lru.get(digest)
            if entry is None:
                return None
            self._lru.move_to_end(digest)
        if not entry.config.matches(path, dest):
            return None
        coding = entry.coding
        if coding is None:
            # Prepared on first use: most dictionaries sent are never asked for.
            coding = Coding("dcz", self.level, dictionary=entry.content, dictionary_hash=digest)
            entry.coding = coding
            if digest in self._lru:
                entry.cost += PREPARED_OVERHEAD
                self.used += PREPARED_OVERHEAD
                self._evict()
        return coding
