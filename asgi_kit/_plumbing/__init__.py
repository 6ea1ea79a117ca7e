"""asgi_kit's private plumbing: the only code that touches raw ASGI header lists.

One module per job, imported directly (``from asgi_kit._plumbing.start import
StartRewrite``); nothing is re-exported here, so importing one piece never
pulls in the others.

* :mod:`.headers`: reading request headers: :class:`~.headers.HeaderScan`
  finds every header a middleware needs in one pass; single look-ups, list
  splitting, header-name validation.
* :mod:`.start`: copy-on-write rewrites of ``http.response.start``
  (:class:`~.start.StartRewrite`, :func:`~.start.copy_start`,
  :class:`~.start.MutableHeaders`).
* :mod:`.options`: option validation for ``__init__`` (wrong type ->
  ``TypeError``, wrong value -> ``ValueError``, both naming the option) and
  the ``exclude_paths`` aliases.
* :mod:`.cache`: the one bounded-cache policy for per-value decisions.
* :mod:`.methods`: the RFC 9110 method normaliser every middleware matches
  and reports with.
* :mod:`.hosts`: default ports, ``Host`` parsing, the client address.
* :mod:`.qvalues`, :mod:`.cookies`, :mod:`.responses`: ``Accept``-style
  lists, cookies, canned responses.

``asgi_kit._http`` re-exports the names other modules imported from it
before this package existed.
"""
