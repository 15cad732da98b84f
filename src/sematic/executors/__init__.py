"""Adapters that run functions: in this process, in worker processes, in Kubernetes jobs."""
