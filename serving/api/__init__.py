"""HTTP routes, one module per concern; :mod:`serving.app` assembles them."""
