"""Named scenarios deployed on the devnets (filled in as contracts land)."""
