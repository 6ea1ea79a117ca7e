"""Read session cookies written by Starlette's ``SessionMiddleware`` (migration aid).

Starlette signs ``base64(JSON)`` with itsdangerous' ``TimestampSigner``:
``payload.timestamp.signature`` where the signature is HMAC-SHA1 under the key
``SHA1("itsdangerous.Signer" + "signer" + secret)`` and the timestamp is a
base64url big-endian integer.  Only reading is implemented: a session found
this way is re-issued in asgi_kit's own format on the same response.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Any

from .signing import b64decode, b64encode

__all__ = ["StarletteCookieReader"]


class StarletteCookieReader:
    """Verify and decode a Starlette session cookie with any of ``secrets``."""

    __slots__ = ("_keys",)

    def __init__(self, secrets: Sequence[bytes]) -> None:
        self._keys = tuple(hashlib.sha1(b"itsdangerous.Signersigner" + s).digest() for s in secrets)

    def read(self, value: bytes, max_age: int | None, now: int) -> dict[str, Any] | None:
        """The session data, or None unless ``value`` is a valid, unexpired cookie."""
        signed, dot, signature = value.rpartition(b".")
        if not dot or len(signature) != 27:  # base64url of a 20-byte SHA-1 digest
            return None
        for key in self._keys:
            expected = b64encode(hmac.digest(key, signed, hashlib.sha1))
            if hmac.compare_digest(expected, signature):
                break
        else:
            return None
        payload, dot, stamp = signed.rpartition(b".")
        if not dot or len(stamp) > 12:
            return None
        try:
            issued = int.from_bytes(b64decode(stamp), "big")
            data = json.loads(binascii.a2b_base64(payload))
        except (binascii.Error, ValueError):
            return None
        if max_age is not None and not 0 <= now - issued <= max_age:
            return None
        return data if isinstance(data, dict) else None
