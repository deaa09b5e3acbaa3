"""eval of grounding_agent."""
