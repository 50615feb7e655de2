"""What the commands share: arguments, config resolution, exit codes, rendering, plots."""
