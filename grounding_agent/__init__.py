"""grounding_agent: resolve operators' words into tracked boxes, or an honest rejection."""

__all__ = ['__version__']

__version__ = '0.1.0'
