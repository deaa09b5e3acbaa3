"""ros of grounding_agent."""
