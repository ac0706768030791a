"""refact.backends: one small adapter per framework, imported lazily."""
