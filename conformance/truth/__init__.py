"""Stage 2: the function catalog, the mpmath oracle, its store (golden vectors, sqlite cache) and the fast truths."""
