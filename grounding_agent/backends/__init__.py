"""Model backends, one module per family, looked up by name through the registry."""

from grounding_agent.backends.base import (
    Backend,
    BackendConfig,
    available_backends,
    create_backend,
    register_backend,
)

__all__ = ['Backend', 'BackendConfig', 'available_backends', 'create_backend', 'register_backend']
