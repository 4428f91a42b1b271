"""The HTTP API: one powertools ``APIGatewayHttpResolver`` app (API Gateway HTTP API,
payload v2) served by Lambda in AWS and by ``pixdex serve`` locally.

Modules: :mod:`pixdex.api.app` (the app and its ``handler``), ``resolver`` (thread-safe
resolver), ``guard`` (request size and API key checks), ``errors`` (the one place errors
become HTTP answers), ``routes_*`` (one router per resource). Importing this package is
cheap; the app is built on first import of :mod:`pixdex.api.app`.
"""
