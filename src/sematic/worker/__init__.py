"""The worker entry point: what a worker process (or pod) runs for one function call."""
