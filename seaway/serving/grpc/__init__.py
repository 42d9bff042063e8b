"""The Open Inference Protocol over gRPC: servicer and error codes."""
