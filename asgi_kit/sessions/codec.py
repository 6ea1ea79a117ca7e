"""How the cookie store turns session bytes into a cookie value and back.

Two codecs share one interface: :class:`SignedCodec` (the default: readable,
tamper-proof) and :class:`EncryptedCodec` (``encrypt=True``: AES-256-GCM, so
the cookie's contents are neither readable nor changeable without the
secret).  Both bind an issued-at time into the value, so the server refuses
cookies older than ``max_age`` whatever the browser keeps; both take the
rotation list of secrets: the first seals, every one opens.  Opening never
raises on hostile input: it returns None.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Sequence
from typing import Protocol

from .signing import Signer, b64encode, safe_b64decode

__all__ = ["CLOCK_SKEW", "CookieCodec", "EncryptedCodec", "SignedCodec"]

#: Issued-at timestamps this far in the future (clock skew between hosts) are accepted.
CLOCK_SKEW = 300
_NONCE = 12  # 96-bit GCM nonces, random per cookie (NIST SP 800-38D §8.2.2)
_TAG = 16
_STAMP = 8  # issued-at, big-endian seconds, inside the ciphertext


def _fresh(issued: int, max_age: int | None, now: int) -> bool:
    if max_age is None:
        return True
    age = now - issued
    return -CLOCK_SKEW <= age <= max_age


class CookieCodec(Protocol):
    """Seals serialised session data into a cookie value, and opens it again."""

    def seal(self, data: bytes, issued: int) -> bytes:
        """The cookie value for ``data`` issued at ``issued`` (Unix seconds)."""
        ...

    def open(self, value: bytes, max_age: int | None) -> bytes | None:
        """The data sealed in ``value``, or None (forged, foreign, expired, garbage)."""
        ...


class SignedCodec:
    """``base64url(data) . issued-at . HMAC-SHA256``: readable, not changeable."""

    __slots__ = ("_signer",)

    def __init__(self, secrets: Sequence[bytes], context: bytes) -> None:
        self._signer = Signer(secrets, b"cookie/" + context)

    def seal(self, data: bytes, issued: int) -> bytes:
        return self._signer.sign(b64encode(data) + b".%d" % issued)

    def open(self, value: bytes, max_age: int | None) -> bytes | None:
        message = self._signer.unsign(value)
        if message is None:
            return None
        payload, dot, issued = message.rpartition(b".")
        if not dot or not issued.isdigit() or len(issued) > 12:
            return None
        if not _fresh(int(issued), max_age, int(time.time())):
            return None
        return safe_b64decode(payload)


class EncryptedCodec:
    """``base64url(nonce || AES-256-GCM(issued-at || data))``, bound to the cookie.

    Each secret yields its own 256-bit key,
    ``HMAC-SHA256(secret, "asgi_kit.sessions/aead/<cookie name>")``, so the
    encryption keys are independent of the signing keys derived from the
    same secret.  The cookie name is the associated data: a value cannot be
    moved to another cookie.  Needs the ``cryptography`` package
    (``pip install "asgi-kit[encryption]"``).
    """

    __slots__ = ("_aad", "_ciphers", "_primary")

    def __init__(self, secrets: Sequence[bytes], context: bytes) -> None:
        try:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                'encrypt=True needs the cryptography package: pip install "asgi-kit[encryption]"'
            ) from exc
        label = b"asgi_kit.sessions/aead/" + context
        ciphers = [AESGCM(hmac.digest(s, label, hashlib.sha256)) for s in secrets]
        self._primary = ciphers[0]
        self._ciphers = tuple(ciphers)
        self._aad = label

    def seal(self, data: bytes, issued: int) -> bytes:
        nonce = os.urandom(_NONCE)
        sealed = self._primary.encrypt(nonce, issued.to_bytes(_STAMP, "big") + data, self._aad)
        return b64encode(nonce + sealed)

    def open(self, value: bytes, max_age: int | None) -> bytes | None:
        if len(value) > 16384:  # far beyond any cookie a browser sends
            return None
        raw = safe_b64decode(value)
        if raw is None or len(raw) < _NONCE + _STAMP + _TAG:
            return None
        from cryptography.exceptions import InvalidTag

        nonce, sealed = raw[:_NONCE], raw[_NONCE:]
        for cipher in self._ciphers:
            try:
                plain = cipher.decrypt(nonce, sealed, self._aad)
            except InvalidTag:
                continue
            issued = int.from_bytes(plain[:_STAMP], "big")
            if not _fresh(issued, max_age, int(time.time())):
                return None
            return plain[_STAMP:]
        return None
