"""Tandem: finishes Job pods whose sidecars outlive their primary containers."""

__version__ = "0.1.0"
