"""Floor 1: records and rules without I/O — config, results, errors, statistics, attribution."""
