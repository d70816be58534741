"""alp-db: the schema manager library. The CLI (scripts.cli) is a thin layer over it."""
