"""worldjepa: action-conditioned JEPA world models and planning from goal images."""

__version__ = "0.1.0"
