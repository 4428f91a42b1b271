"""The local host of the API: real HTTP requests become API Gateway HTTP API (payload
v2) events, resolved by the very app Lambda runs (:mod:`pixdex.api.app`)."""

from pixdex.server.http import RunningServer, serve, start

__all__ = ["RunningServer", "serve", "start"]
