"""runtime of grounding_agent."""
