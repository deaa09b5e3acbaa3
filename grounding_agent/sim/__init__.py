"""sim of grounding_agent."""
