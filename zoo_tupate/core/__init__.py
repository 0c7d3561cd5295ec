"""Layer 0, the ground every other layer stands on: typed errors, environment constants, the package version,
atomic files and bounded JSON, safe text for output, secret redaction and the base-model registry.

Imports nothing from the package outside ``core``.
"""
