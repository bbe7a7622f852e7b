"""The engine: everything that works without a window. Nothing in here imports Qt."""
