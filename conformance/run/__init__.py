"""Stage 4: running backends in isolated workers and judging them: checks, properties, the runner, sweeps."""
