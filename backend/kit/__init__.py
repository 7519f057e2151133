"""Building blocks shared by every domain package (repositories, column types)."""
