"""The Python client of the pixdex HTTP API."""

from pixdex.client.client import Client
from pixdex.client.transport import ApiError

__all__ = ["ApiError", "Client"]
