"""Examples of using rayjoule on your own code (importable from the repository root, so
``--workload examples.user_workload:WORKLOAD`` works)."""
