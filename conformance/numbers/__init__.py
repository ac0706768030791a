"""Stage 1: floating-point formats, exact rounding, and the ruler (ULP error, failure classes)."""
