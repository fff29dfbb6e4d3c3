"""``python -m driftline`` is the same as the ``driftline`` command."""

from driftline.cli import app

app()
