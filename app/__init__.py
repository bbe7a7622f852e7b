"""CodeLamp: offline semantic code search."""

__version__ = "0.1.0"
