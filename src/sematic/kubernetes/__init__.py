"""Kubernetes: job manifests for the driver and workers (the CloudResolver's adapter)."""
