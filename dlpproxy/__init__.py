"""dlpproxy: a data-leak-prevention proxy for LLM chat services."""

__version__ = "0.1.0"
