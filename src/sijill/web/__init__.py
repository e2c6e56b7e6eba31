"""Web pages for the people who run the registry: server-rendered (Jinja2), in Arabic, French
and English, calling the same services as the API with the same `Principal`, so permissions,
scopes, consent and audit are identical.

`mount(app)` adds the pages under `/web` and their stylesheet, served from this package (no
CDN, nothing fetched at run time). Plain forms: every page works without JavaScript.
"""

from sijill.web.app import mount

__all__ = ["mount"]
