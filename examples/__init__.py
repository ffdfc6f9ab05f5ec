"""Example scripts and capsules (the demo script ships inside the package)."""
