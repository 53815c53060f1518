"""Pages of the search app, one module per feature."""
