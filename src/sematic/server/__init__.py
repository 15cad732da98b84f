"""The HTTP API server and the web UI."""
