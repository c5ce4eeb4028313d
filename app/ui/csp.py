"""Content-Security-Policies of the HTML pages: each allows only the app's own files.

A page sets its own policy; the SecurityHeaders middleware only fills one in where none is set.
"""

from __future__ import annotations

COMMON = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

# The demo page: its script and stylesheet, the picked image as a blob: preview, fetch to the API.
PAGE = f"{COMMON}; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'"

# Swagger UI: its bundle + our init script; its CSS inlines SVG icons as data: URIs; "Try it out"
# calls the API (and downloads of responses are blob: URLs).
SWAGGER = (
    f"{COMMON}; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self' data:"
)

# ReDoc renders with styled-components, which injects <style> elements, and runs its search
# index in a blob: worker; neither can be hashed ahead of time.
REDOC = (
    f"{COMMON}; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self' data:; worker-src blob:"
)
