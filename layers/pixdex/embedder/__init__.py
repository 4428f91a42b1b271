"""The embedder: the inference server (SageMaker container contract) and its client.

* :mod:`.protocol`: the JSON request/response of ``POST /invocations``;
* :mod:`.engine`: decoding in parallel and batched model runs behind that protocol;
* :mod:`.server`: ``GET /ping`` + ``POST /invocations`` on port 8080 (``pixdex embedder
  serve``, and the GPU container's entry point);
* :mod:`.transports`, :mod:`.client`: one client, three modes (in-process, HTTP,
  SageMaker ``invoke_endpoint``), chosen by ``PIXDEX_EMBEDDER``.

Importing this package is cheap: submodules are imported by their users.
"""
