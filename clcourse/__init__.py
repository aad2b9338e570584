"""clcourse — a teaching course on continual learning, backed by a small tested PyTorch package."""
__version__ = "0.1.0"
