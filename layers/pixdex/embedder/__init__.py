"""The embedder client: the model behind an endpoint, used like a local one.

* :mod:`.protocol`: the JSON request/response of ``POST /invocations``;
* :mod:`.transports`, :mod:`.client`: one client, two remote modes (HTTP, SageMaker
  ``invoke_endpoint``), chosen by ``PIXDEX_EMBEDDER``.

The server side (the engine and the HTTP server) is :mod:`pixdex.serving`.

Importing this package is cheap: submodules are imported by their users.
"""
