"""The ``driftline`` command line and the local-stack launcher.

Glue only: this package may import every component; no component imports it.
"""

__version__ = "0.1.0"
