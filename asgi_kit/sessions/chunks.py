"""Cookie sessions larger than one cookie: split across numbered cookies.

Browsers drop a cookie whose name and value exceed 4096 bytes.  A value that
does not fit is sent as ``<name>=~N~<part 0>`` followed by
``<name>-1=<part 1>`` … ``<name>-(N-1)=<part N-1>``.  ``~`` never occurs in a
single-cookie value (base64url and dots), so the first cookie says by itself
whether the session is chunked and into how many parts.  The parts are joined
before the value is verified or decrypted as one: a missing, extra or
swapped part fails verification like any other tampering.
"""

from __future__ import annotations

from asgi_kit._http import get_cookie
from asgi_kit.types import RawHeaders

__all__ = ["MAX_COOKIE_SIZE", "SessionTooLarge", "chunk_name", "join_chunks", "split_value"]

#: Browsers drop a cookie whose name and value exceed this many bytes.
MAX_COOKIE_SIZE = 4096


class SessionTooLarge(ValueError):
    """The session does not fit in the cookies ``max_cookie_chunks`` allows.

    Raised from the ``send`` of the response start (so the application sees
    it where it answers) when ``oversize="raise"``, or ``"auto"`` under
    Python's development mode; otherwise the error is logged and the
    browser keeps its previous session.
    """


def chunk_name(name: str, index: int) -> str:
    """The name of part ``index`` (1-based beyond the first cookie)."""
    return f"{name}-{index}"


def split_value(name: str, value: bytes, max_chunks: int) -> list[bytes] | None:
    """``value`` as the cookie values to send, in order; None when it needs more parts.

    One part (``[value]``) when it fits in one cookie, as before chunking
    existed, so small sessions look exactly like unchunked ones.
    """
    if len(name) + 1 + len(value) <= MAX_COOKIE_SIZE:
        return [value]
    for count in range(2, max_chunks + 1):
        prefix = b"~%d~" % count
        sizes = [MAX_COOKIE_SIZE - len(name) - 1 - len(prefix)]
        sizes += [MAX_COOKIE_SIZE - len(chunk_name(name, i)) - 1 for i in range(1, count)]
        if sum(sizes) < len(value):
            continue
        parts: list[bytes] = []
        start = 0
        for size in sizes:
            parts.append(value[start : start + size])
            start += size
        parts[0] = prefix + parts[0]
        return parts
    return None


def join_chunks(
    name: str, first: str, headers: RawHeaders, max_chunks: int
) -> tuple[str | None, int]:
    """The whole value of a session sent as ``first`` plus parts, and the part count.

    Returns ``(first, 1)`` for an unchunked cookie, ``(None, n)`` when a
    part is missing or the count is out of bounds (``n`` is what the first
    cookie claimed, clamped to ``max_chunks``, so its parts can still be
    deleted).
    """
    if not first.startswith("~"):
        return first, 1
    count_text, mark, rest = first[1:].partition("~")
    if not mark or not count_text.isdigit() or len(count_text) > 3:
        return None, 1
    count = int(count_text)
    if count < 2 or count > max_chunks:
        return None, min(max(count, 1), max_chunks)
    parts = [rest]
    for index in range(1, count):
        part = get_cookie(headers, chunk_name(name, index))
        if part is None:
            return None, count
        parts.append(part)
    return "".join(parts), count
