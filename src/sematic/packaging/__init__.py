"""Native dependency packaging: container images built and pushed with no Docker daemon.

``sematic build`` turns a pipeline script into one image per base: the base image, a layer
of third-party distributions, a layer of Sematic itself, a layer of the user's code, and
the worker entry point. Layers are reproducible tarballs, content-addressed and uploaded
only when the registry lacks them.
"""
