"""What operators see of the running service: Prometheus metrics (metrics.py, with the database
pools' figures in pools.py) and OpenTelemetry traces (tracing.py). README, "Operating it"."""
