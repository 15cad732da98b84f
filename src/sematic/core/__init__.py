"""The pure core: functions, futures, types, the engine and the ports adapters implement.

Nothing here imports infrastructure (databases, HTTP, Kubernetes, CLI libraries) or the
rest of the package.
"""
