"""Floor 4: framework overhead — interleaved sessions and bootstrap intervals."""
