"""The real parts the tests run against: a registry, PostgreSQL, base images, runc
containers, a local Kubernetes, and the helpers they share (free ports)."""
