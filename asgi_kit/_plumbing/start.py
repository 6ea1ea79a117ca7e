"""Copy-on-write rewrites of ``http.response.start``.

The app owns the start message it passes to ``send`` and the header list in
it: both may be module-level constants reused on every response (a raw ASGI
app, Starlette sending one ``Response`` from several endpoints).  Editing
either in place would carry one response's headers (a session cookie, an
allowed origin) into every later response.  Everything here returns a new
message with a list of its own and leaves the app's objects alone.

:class:`StartRewrite` is the one to use on a hot path: compiled once in a
middleware's ``__init__``, it applies every edit (replace, add, remove,
keep-the-app's, merge ``Vary``) while building the single new list, so a
rewritten response costs one list and one dict, however many edits it has.
:class:`MutableHeaders` is for edits decided header by header on a copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from asgi_kit.types import Headers, Message

from .headers import header_value, header_values

__all__ = ["MutableHeaders", "StartRewrite", "copy_start", "merge_vary", "rewrite_start"]

_VARY = b"vary"
Pairs = Sequence[tuple[bytes, bytes]]


def merge_vary(current: bytes, tokens: Sequence[bytes]) -> bytes | None:
    """``current`` (a ``Vary`` value) with ``tokens`` merged in, or None if unchanged.

    Tokens compare case-insensitively; ``*`` already varies on everything.
    """
    lowered = current.lower()
    if b"*" not in lowered:
        # The usual case in a stack: each middleware adds a token the value
        # does not even contain as a substring, so no parsing is needed.
        missing = [t for t in tokens if t.lower() not in lowered]
        if len(missing) == len(tokens):
            head = current.strip(b", \t")
            return b", ".join([head, *missing]) if head else b", ".join(missing)
    items = [s for t in current.split(b",") if (s := t.strip())]
    present = {t.lower() for t in items}
    if b"*" in present:
        return None
    missing = [t for t in tokens if t.lower() not in present]
    if not missing:
        return None
    return b", ".join(items + missing)


class StartRewrite:
    """A precompiled, copy-on-write rewrite of a response start message.

    Declare the header names once; :meth:`apply` then builds the new header
    list in one pass over the app's:

    * ``replace``: names whose app-sent headers are dropped, because
      :meth:`apply` is given their new value (``values=``).
    * ``remove``: names dropped.
    * ``keep``: names of ``defaults=`` pairs, added only when the app sent
      none (the app's own value wins).
    * ``vary``: tokens merged into ``Vary`` (several ``Vary`` headers are
      folded into one; ``*`` absorbs everything).

    Names are lower-case bytes; the app's names match in any case.  The app's
    message and list are never changed; the result is a new dict with a new
    list, or the app's own message when the rewrite changes nothing.
    """

    __slots__ = ("_drop", "_keep", "_lengths", "_names", "_vary", "_vary_pair", "_vary_value")

    def __init__(
        self,
        *,
        replace: Iterable[bytes] = (),
        remove: Iterable[bytes] = (),
        keep: Iterable[bytes] = (),
        vary: Iterable[bytes] = (),
    ) -> None:
        drop = frozenset(replace) | frozenset(remove)
        self._keep = frozenset(keep)
        self._vary = tuple(vary)
        self._vary_value = b", ".join(self._vary)
        self._vary_pair = (_VARY, self._vary_value) if self._vary else None
        watched = drop | self._keep | ({_VARY} if self._vary else frozenset())
        for name in watched:
            if not isinstance(name, bytes) or name != name.lower() or not name:
                raise ValueError(f"StartRewrite names must be lower-case bytes, got {name!r}")
        if _VARY in drop or _VARY in self._keep:
            raise ValueError("merge Vary with vary=, not replace/remove/keep")
        self._drop = drop
        self._names = watched
        self._lengths = frozenset(len(n) for n in watched)

    def apply(
        self,
        message: Message,
        values: Pairs = (),
        add: Pairs = (),
        defaults: Pairs = (),
    ) -> Message:
        """A copy of ``message`` with the edits applied (the app's own when none apply).

        ``values`` are the new headers of the ``replace`` names, ``add`` are
        appended whatever the app sent, ``defaults`` are appended unless the
        app sent that (``keep``) name.
        """
        headers: Any = message.get("headers")
        if type(headers) is not list:
            # A tuple, an iterator (walked once) or None: this is the one list.
            headers = [(bytes(k), bytes(v)) for k, v in headers or ()]
            return self._rebuild(message, headers, values, add, defaults)
        lengths = self._lengths
        vary_at = -1
        merged: bytes | None = None
        for key, _ in headers:
            if len(key) in lengths:
                # Which watched names the app sent, and where.
                names = self._names
                hits = [
                    (i, name)
                    for i, (key, _) in enumerate(headers)
                    if len(key) in lengths
                    and (name := key if key in names else key.lower()) in names
                ]
                if hits:
                    if len(hits) > 1 or hits[0][1] != _VARY:
                        return self._rebuild(message, headers, values, add, defaults)
                    # The usual case inside a stack: another middleware already
                    # sent Vary; merge into it in the copy below.
                    vary_at = hits[0][0]
                    if self._vary:
                        merged = merge_vary(headers[vary_at][1], self._vary)
                break
        # Nothing to drop: the app's list is copied in C, then edited.
        vary = self._vary_pair if vary_at < 0 else None
        if vary is None and merged is None and not values and not add and not defaults:
            return message
        out = list(headers)
        if merged is not None:
            out[vary_at] = (_VARY, merged)
        if vary is not None:
            out.append(vary)
        if values:
            out.extend(values)
        if add:
            out.extend(add)
        if defaults:
            out.extend(defaults)
        copied = dict(message)
        copied["headers"] = out
        return copied

    def _rebuild(
        self, message: Message, headers: Headers, values: Pairs, add: Pairs, defaults: Pairs
    ) -> Message:
        """:meth:`apply` when the app sent a header the rewrite watches."""
        lengths = self._lengths
        names = self._names
        drop = self._drop
        out: Headers = []
        changed = False
        vary_at = -1
        vary_more: list[bytes] | None = None
        seen: set[bytes] | None = None
        for pair in headers:
            key = pair[0]
            if len(key) in lengths:
                name = key if key in names else key.lower()
                if name in names:
                    if name in drop:
                        changed = True
                        continue
                    if name == _VARY:
                        if vary_at < 0:
                            vary_at = len(out)
                        else:
                            if vary_more is None:
                                vary_more = [pair[1]]
                            else:
                                vary_more.append(pair[1])
                            continue
                    elif seen is None:
                        seen = {name}
                    else:
                        seen.add(name)
            out.append(pair)
        if vary_more is not None:
            out[vary_at] = (_VARY, b", ".join([out[vary_at][1], *vary_more]))
            changed = True
        if self._vary:
            if vary_at < 0:
                out.append((_VARY, self._vary_value))
                changed = True
            else:
                merged = merge_vary(out[vary_at][1], self._vary)
                if merged is not None:
                    out[vary_at] = (_VARY, merged)
                    changed = True
        if values:
            out.extend(values)
            changed = True
        if add:
            out.extend(add)
            changed = True
        for pair in defaults:
            if seen is None or pair[0] not in seen:
                out.append(pair)
                changed = True
        if not changed and type(message.get("headers")) is list:
            return message
        copied = dict(message)
        copied["headers"] = out
        return copied

    def __repr__(self) -> str:
        return (
            f"StartRewrite(drop={sorted(self._drop)!r}, keep={sorted(self._keep)!r}, "
            f"vary={list(self._vary)!r})"
        )


def rewrite_start(
    message: Message,
    *,
    replace: Pairs = (),
    add: Pairs = (),
    remove: Iterable[bytes] = (),
    defaults: Pairs = (),
    vary: Iterable[bytes] = (),
) -> Message:
    """One-off :class:`StartRewrite`: compile and apply (for cold paths).

    ``replace`` pairs replace the app's headers of the same name.
    """
    rewrite = StartRewrite(
        replace=[k for k, _ in replace],
        remove=remove,
        keep=[k for k, _ in defaults],
        vary=vary,
    )
    return rewrite.apply(message, replace, add, defaults)


def copy_start(message: Message) -> tuple[Message, Headers]:
    """A shallow copy of a start message with a header list of its own.

    The app owns ``message`` and its ``headers``: both may be constants
    reused on every response.  This costs one dict copy and one list copy.
    """
    headers = message.get("headers")
    raw: Headers
    if type(headers) is list:
        raw = list(headers)
    else:
        raw = [(bytes(k), bytes(v)) for k, v in (headers or ())]
    copied = dict(message)
    copied["headers"] = raw
    return copied, raw


class MutableHeaders:
    """A mutable, case-insensitive view over a raw ASGI header list.

    Wrap a list the middleware owns: :meth:`copy_of` copies an app's start
    message first, so the app's own list and dict are never changed.  Names
    passed in must be lower-case bytes; existing names in the list may be in
    any case (Django sends ``Content-Type``) and are matched
    case-insensitively.  For edits known in advance prefer
    :class:`StartRewrite`, which needs no second pass per edit.
    """

    __slots__ = ("raw",)

    def __init__(self, raw: Headers) -> None:
        self.raw = raw

    @classmethod
    def copy_of(cls, message: Message) -> tuple[Message, MutableHeaders]:
        """A copy of ``message`` with its own header list, and a view over that list.

        Send the returned message instead of the app's.
        """
        copied, raw = copy_start(message)
        return copied, cls(raw)

    def get(self, name: bytes) -> bytes | None:
        """First value of ``name``, or None."""
        return header_value(self.raw, name)

    def get_all(self, name: bytes) -> list[bytes]:
        """Every value of ``name``."""
        return header_values(self.raw, name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, bytes) and header_value(self.raw, name) is not None

    def add(self, name: bytes, value: bytes) -> None:
        """Append a header, keeping existing ones with the same name."""
        self.raw.append((name, value))

    def set(self, name: bytes, value: bytes) -> None:
        """Replace every ``name`` header with a single one."""
        self.remove(name)
        self.raw.append((name, value))

    def setdefault(self, name: bytes, value: bytes) -> bytes:
        """Add ``name: value`` unless ``name`` is present; return the value in force."""
        current = header_value(self.raw, name)
        if current is None:
            self.raw.append((name, value))
            return value
        return current

    def remove(self, name: bytes) -> bool:
        """Remove every ``name`` header; return whether any was present."""
        n = len(name)
        raw = self.raw
        kept = [(k, v) for k, v in raw if not (len(k) == n and (k == name or k.lower() == name))]
        if len(kept) == len(raw):
            return False
        raw[:] = kept
        return True

    def add_vary(self, *tokens: bytes) -> None:
        """Merge ``tokens`` into ``Vary`` without duplicates (``*`` absorbs all).

        Several ``Vary`` headers are folded into one; a single one is
        rewritten in place (no list rebuild).
        """
        raw = self.raw
        first = -1
        found: list[int] | None = None  # indexes of further Vary headers, rarely any
        for i, (k, _) in enumerate(raw):
            if len(k) == 4 and (k == _VARY or k.lower() == _VARY):
                if first < 0:
                    first = i
                elif found is None:
                    found = [i]
                else:
                    found.append(i)
        if first < 0:
            raw.append((_VARY, b", ".join(tokens)))
            return
        joined = raw[first][1]
        if found is not None:
            joined = b", ".join([joined, *[raw[i][1] for i in found]])
        merged = merge_vary(joined, tokens)
        if merged is None:
            items = [s for t in joined.split(b",") if (s := t.strip())]
            if found is None or b"*" in items:
                return
            merged = b", ".join(items)
        raw[first] = (_VARY, merged)
        if found is not None:
            for i in reversed(found):
                del raw[i]

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)

    def __repr__(self) -> str:
        return f"MutableHeaders({self.raw!r})"
