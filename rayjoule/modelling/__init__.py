"""Floor 4: profiles → fitted energy/time models → predictions → the optimiser."""
