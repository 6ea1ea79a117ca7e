"""ProxyHeadersMiddleware against Uvicorn's ProxyHeadersMiddleware."""

from __future__ import annotations

from asgi_kit import ProxyHeadersMiddleware

from .driver import App, Scenario, json_app, make_scope, optional

# make_scope's peer is 203.0.113.7: the load balancer, inside a trusted network.
TRUSTED = ["203.0.113.0/24", "10.0.0.0/8"]


def _uvicorn(app: App) -> App:
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware as Uvicorn

    return Uvicorn(app, trusted_hosts=TRUSTED)


def scenarios() -> list[Scenario]:
    bare = json_app()
    forwarded = [(b"x-forwarded-for", b"198.51.100.4, 10.0.0.2"), (b"x-forwarded-proto", b"https")]
    return [
        Scenario(
            "proxy: XFF chain + proto, CIDR trust",
            bare=bare,
            ours=ProxyHeadersMiddleware(bare, trusted_hosts=TRUSTED),
            anchors={"uvicorn ProxyHeadersMiddleware": optional(lambda: _uvicorn(bare))},
            scope=make_scope(extra_headers=forwarded),
        ),
        Scenario(
            "proxy: no forwarding headers",
            bare=bare,
            ours=ProxyHeadersMiddleware(bare, trusted_hosts=TRUSTED),
            anchors={"uvicorn ProxyHeadersMiddleware": optional(lambda: _uvicorn(bare))},
        ),
    ]
