"""The REST adapter: Open Inference Protocol (V2), MLflow scoring, health and metadata."""
