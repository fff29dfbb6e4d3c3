"""Passwords out of anything shown: URLs for display, and free text from libraries.

Connection URLs (Redis, MLflow, Alertmanager) may carry ``user:password@``. Driftline
prints and logs where it connects, and passes library error messages on to HTTP clients
and logs; MLflow's REST errors, for one, quote the full request URL. Every such text goes
through here first, so a secret in a URL never reaches a log line, a metric label, an
error body or the terminal.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"

#: ``scheme://user:password@``: the password is whatever runs to the ``@`` (no ``/`` or
#: whitespace), so a password holding ``:`` is masked whole.
_CREDENTIALS = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*):[^/\s@]+@")


def redact_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``; everything else kept."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:{MASK}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def redact_credentials(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` in it masked."""
    return _CREDENTIALS.sub(rf"\g<head>:{MASK}@", text)
