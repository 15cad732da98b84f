"""The entry point: `bazel run //my_pipeline:main_local -- 100` runs the pipeline on this
machine; `bazel run //my_pipeline:main -- 100 --cloud` packages it and runs it on
Kubernetes (CloudResolver, detach=False)."""

from __future__ import annotations

import sys

from my_pipeline.pipeline import pipeline

from sematic import CloudResolver

if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    future = pipeline(n)
    if "--cloud" in sys.argv:
        print(future.resolve(CloudResolver(detach=False)))
    else:
        print(future.resolve())
