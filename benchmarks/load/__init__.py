"""Load harness: alp-db's online operations measured under the platform's own traffic (pgbench)."""
