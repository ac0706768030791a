"""Stage 5: the report contract and its writers (JSON, Markdown, JUnit, HTML) and the diff of two reports."""
