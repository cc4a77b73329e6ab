"""What tests share besides fixtures: factories, test-only data types, the import corpus,
network namespaces and the web-process helpers."""
