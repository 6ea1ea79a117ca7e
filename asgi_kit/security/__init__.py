"""Guard middleware: security headers, CSRF by Fetch Metadata, trusted hosts.

* :class:`SecurityHeadersMiddleware`: the OWASP Secure Headers Project's
  response headers, CSP with per-request nonces.
* :class:`CSRFMiddleware`: tokenless cross-origin request protection
  (``Sec-Fetch-Site``, falling back to ``Origin``), as Go's
  ``http.CrossOriginProtection``.
* :class:`TrustedHostMiddleware`: Starlette's, with a strict ``Host`` parser,
  IPv6 literals and ports.

See ``docs/security.md``.
"""

from __future__ import annotations

from ._policy import CSP_DIRECTIVES, OWASP_PERMISSIONS_POLICY, PERMISSIONS_FEATURES
from .csrf import CSRFMiddleware
from .headers import HSTS_MAX_AGE, SecurityHeadersMiddleware
from .hosts import TrustedHostMiddleware

__all__ = [
    "CSP_DIRECTIVES",
    "HSTS_MAX_AGE",
    "OWASP_PERMISSIONS_POLICY",
    "PERMISSIONS_FEATURES",
    "CSRFMiddleware",
    "SecurityHeadersMiddleware",
    "TrustedHostMiddleware",
]
