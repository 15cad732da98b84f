"""The sematic command line."""
