"""Live monitoring: rolling windows, sketches, Prometheus metrics, rolling CSV, dashboard."""
