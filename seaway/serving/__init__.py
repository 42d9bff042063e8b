"""The inference server: data plane, HTTP and gRPC adapters, and its lifecycle. See docs/serving.md."""
