"""Floor 3: one metered run (session: validate → meter → map → attribute → store) and the store."""
