"""The inference server: what runs on the GPU endpoint (SageMaker container contract).

* :mod:`.engine`: decoding in parallel and batched model runs behind the embedder
  protocol (:mod:`pixdex.embedder.protocol`), with the model from :mod:`pixdex.engines`;
* :mod:`.server`: ``GET /ping`` + ``POST /invocations`` on port 8080 (``pixdex embedder
  serve``, and the GPU container's entry point ``python -m pixdex.serving.server``).

Its client is :mod:`pixdex.embedder`; it sits above the model factory, the client below.
"""
