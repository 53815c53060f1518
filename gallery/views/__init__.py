"""Pages of the gallery app, one module per feature."""
