"""The guard middleware against what users pick instead.

* SecurityHeadersMiddleware vs the ``secure`` package's ``SecureASGIMiddleware``
  (its default headers, like ours).
* CSRFMiddleware vs starlette-csrf (double-submit cookie: a cookie and a
  matching header token on every unsafe request).
* TrustedHostMiddleware vs Starlette's.
"""

from __future__ import annotations

from .driver import App, Scenario, json_app, make_scope, optional

HOSTS = ["api.example.com", "*.example.com"]
SECRET = "bench-secret-not-for-production"


def _secure(app: App) -> App:
    from secure.middleware.asgi import SecureASGIMiddleware

    return SecureASGIMiddleware(app)


def _starlette_csrf(app: App) -> App:
    from starlette_csrf import CSRFMiddleware as StarletteCSRF

    return StarletteCSRF(app, secret=SECRET)


def _csrf_token() -> bytes:
    from itsdangerous import URLSafeSerializer

    # starlette-csrf's tokens: a signed random value (its own serializer salt).
    return URLSafeSerializer(SECRET, "csrftoken").dumps("0" * 32).encode()  # type: ignore[no-any-return]


def _starlette_hosts(app: App) -> App:
    from starlette.middleware.trustedhost import TrustedHostMiddleware as StarletteHosts

    return StarletteHosts(app, allowed_hosts=HOSTS)


def scenarios() -> list[Scenario]:
    from asgi_kit import CSRFMiddleware, SecurityHeadersMiddleware, TrustedHostMiddleware

    bare = json_app()
    headers = SecurityHeadersMiddleware(bare)
    nonce = SecurityHeadersMiddleware(
        bare, content_security_policy={"default-src": "'self'"}, csp_nonce=True
    )
    header_anchors = {"secure SecureASGIMiddleware": optional(lambda: _secure(bare))}
    csrf = CSRFMiddleware(bare, registry=None)
    csrf_anchors = {"starlette-csrf": optional(lambda: _starlette_csrf(bare))}
    hosts = TrustedHostMiddleware(bare, allowed_hosts=HOSTS)
    host_anchors = {"starlette TrustedHostMiddleware": optional(lambda: _starlette_hosts(bare))}
    try:
        token = _csrf_token()
    except ImportError:
        token = b"x"
    with_token = [
        (b"cookie", b"csrftoken=" + token),
        (b"x-csrftoken", token),
        (b"origin", b"https://api.example.com"),
    ]
    post = make_scope(
        "POST", scheme="https", drop=[b"sec-fetch-site"],
        extra_headers=[(b"sec-fetch-site", b"same-origin"), *with_token],
    )  # fmt: skip
    return [
        Scenario("security headers: defaults", bare=bare, ours=headers, anchors=header_anchors,
                 goal=0.5),
        Scenario("security headers: https (HSTS)", bare=bare, ours=headers,
                 anchors=header_anchors, scope=make_scope(scheme="https"), goal=0.5),
        Scenario("security headers: CSP with a nonce", bare=bare, ours=nonce,
                 anchors=header_anchors, goal=0.5),
        Scenario("csrf: GET (safe)", bare=bare, ours=csrf, anchors=csrf_anchors, goal=0.5),
        Scenario("csrf: same-origin POST (anchor: valid cookie + token)", bare=bare, ours=csrf,
                 anchors=csrf_anchors, scope=post, goal=0.5),
        Scenario("trusted host: allowed host", bare=bare, ours=hosts, anchors=host_anchors,
                 goal=0.5),
        Scenario("trusted host: wildcard subdomain", bare=bare, ours=hosts,
                 anchors=host_anchors, goal=0.5,
                 scope=make_scope(drop=[b"host"], extra_headers=[(b"host", b"eu.example.com")])),
    ]  # fmt: skip
