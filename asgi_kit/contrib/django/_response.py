"""What a middleware sent, carried over to the ``HttpResponse`` Django returns."""

from __future__ import annotations

from http.client import responses as _REASONS
from http.cookies import Morsel, SimpleCookie
from typing import Any

from asgi_kit.types import Headers


class RawSetCookie(Morsel):  # type: ignore[type-arg]
    """A ``Set-Cookie`` value sent by the middleware, kept byte for byte.

    It sits in ``response.cookies`` under its cookie name, so Django and the
    test client see it (``response.cookies["session"].value``).  When Django
    code later changes it (``response.set_cookie(...)``) the morsel is
    serialised from its attributes as usual.
    """

    def __init__(self, name: str, value: str, raw: str) -> None:
        super().__init__()
        # Morsel.set() would reject names Django never has to produce itself.
        self._key = name
        self._value = value
        self._coded_value = value
        self._raw = raw
        self._raw_value = value

    def OutputString(self, attrs: Any = None) -> str:
        raw = getattr(self, "_raw", None)  # absent after unpickling (cache middleware)
        if raw is not None and self._value == self._raw_value and not any(dict.values(self)):
            return str(raw)
        return str(super().OutputString(attrs))


def response_headers(response: Any) -> Headers:
    """``response``'s headers as ASGI header pairs, names as Django writes them."""
    headers: Headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.items()]
    for morsel in response.cookies.values():
        headers.append((b"Set-Cookie", morsel.output(header="").strip().encode("latin-1")))
    return headers


def apply_headers(response: Any, status: int, headers: Headers, sent: Headers | None) -> None:
    """Make ``response`` carry ``status`` and exactly ``headers``.

    ``sent`` is what the adapter sent down for this response: when the
    middleware left the headers alone nothing is rebuilt.  Repeated names are
    joined with ``", "`` (Django keeps one value per name); ``Set-Cookie``
    lines go to ``response.cookies`` unchanged.
    """
    if status != response.status_code:
        response.status_code = status
        response.reason_phrase = _REASONS.get(status, "Unknown Status Code")
    if sent is not None and headers == sent:
        return
    merged: dict[str, tuple[str, list[str]]] = {}
    cookies: list[str] = []
    for raw_name, raw_value in headers:
        name = bytes(raw_name).decode("latin-1")
        value = bytes(raw_value).decode("latin-1")
        lower = name.lower()
        if lower == "set-cookie":
            cookies.append(value)
            continue
        entry = merged.get(lower)
        if entry is None:
            merged[lower] = (name, [value])
        else:
            entry[1].append(value)
    store = response.headers
    for key in list(store):
        del store[key]
    for name, values in merged.values():
        store[name] = values[0] if len(values) == 1 else ", ".join(values)
    sent_cookies = (
        [bytes(v).decode("latin-1") for k, v in sent if k.lower() == b"set-cookie"]
        if sent is not None
        else None
    )
    if cookies != sent_cookies:
        jar: SimpleCookie = SimpleCookie()
        for index, raw in enumerate(cookies):
            pair = raw.partition(";")[0]
            name, _, value = pair.partition("=")
            name = name.strip() or f"cookie-{index}"
            key = name if name not in jar else f"{name}#{index}"
            dict.__setitem__(jar, key, RawSetCookie(name, value.strip(), raw))
        response.cookies = jar
