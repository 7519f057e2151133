"""Everything that talks to a chain. Knows nothing about credit, and never imports `backend`."""
