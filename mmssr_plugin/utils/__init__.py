"""Small helpers every stage shares: atomic files and locks, canonical hashing, logging names."""
