"""A stand-in for rules_python offline: Bazel's native Python rules under their usual names."""

def py_binary(**attrs):
    native.py_binary(**attrs)

def py_library(**attrs):
    native.py_library(**attrs)

def py_test(**attrs):
    native.py_test(**attrs)
