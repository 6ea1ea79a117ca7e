"""``Accept``-style lists with q-values (RFC 9110 §12.4.2), tolerant of garbage."""

from __future__ import annotations

from .headers import MAX_LIST_ITEMS, TOKEN_RE, split_comma_list

__all__ = ["parse_qvalues"]


def _parse_qvalue(text: str) -> float | None:
    """Parse an RFC 9110 §12.4.2 qvalue; None when it is not one."""
    n = len(text)
    if n == 0 or n > 5:
        return None
    if text[0] == "1":
        if n == 1 or (text[1] == "." and text[2:].strip("0") == ""):
            return 1.0
        return None
    if text[0] == "0":
        if n == 1:
            return 0.0
        if text[1] == "." and text[2:].isdigit() and text[2:].isascii():
            return float(text)
        if n == 2 and text[1] == ".":
            return 0.0
    return None


def parse_qvalues(value: str | bytes, max_items: int = MAX_LIST_ITEMS) -> list[tuple[str, float]]:
    """Parse an ``Accept``-style list into ``(token, q)`` pairs, in order.

    Tokens are lower-cased; a missing ``q`` is 1.0.  Items that are not valid
    (empty, not a token or media range, malformed ``q``) are skipped rather
    than failing the whole header, so hostile input yields a shorter list and
    never an exception.  At most ``max_items`` items are read.
    """
    result: list[tuple[str, float]] = []
    for item in split_comma_list(value, max_items):
        token, _, params = item.partition(";")
        token = token.strip().lower()
        if not token or not TOKEN_RE.fullmatch(token.replace("/", "", 1)):
            continue
        q = 1.0
        if params:
            for param in params.split(";"):
                pname, eq, pvalue = param.partition("=")
                if pname.strip().lower() == "q":
                    parsed = _parse_qvalue(pvalue.strip()) if eq else None
                    if parsed is None:
                        break
                    q = parsed
            else:
                result.append((token, q))
            continue
        result.append((token, q))
    return result
