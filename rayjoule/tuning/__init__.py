"""Floor 4: the Optuna search over settings for the fewest joules."""
