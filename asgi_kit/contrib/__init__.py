"""Framework integrations for asgi_kit.

:mod:`asgi_kit.contrib.django` lists any asgi_kit middleware (or any other
ASGI middleware) in Django's ``MIDDLEWARE`` setting.  Integrations are
imported explicitly and never from :mod:`asgi_kit` itself, so the core
package keeps no framework dependency.
"""
