"""Floor 2: windows over meters, idle baselines, the per-host Ray meter actors and metrics."""
