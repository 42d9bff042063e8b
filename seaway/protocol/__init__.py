"""Wire protocols as pure data: Open Inference Protocol (V2) REST and gRPC codecs, MLflow scoring.

Nothing here imports a web framework or the server: codecs turn bytes into the transport-neutral
types of :mod:`seaway.protocol.types` and back, raising ``InvalidInputError`` for bad input.
"""
