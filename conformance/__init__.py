"""refact.conformance: every backend against mpmath truth, in ULPs, written as CI reports."""
