"""requirement(name), as a pip_parse repository's requirements.bzl offers it."""

def requirement(name):
    return "@pip//:" + name.lower().replace("-", "_")
