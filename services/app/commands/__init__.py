"""The ``doisoat`` commands, one module per group; :mod:`services.app.cli` mounts them."""
