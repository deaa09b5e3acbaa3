"""Sub-commands of `grounding-agent`, one module each (see grounding_agent/cli.py)."""
