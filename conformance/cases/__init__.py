"""Stage 3: the case sets: the points each function is judged at."""
