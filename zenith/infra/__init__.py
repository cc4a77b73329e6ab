"""Plumbing both apps use: the Redis client, logging and correlation ids, lifecycle events,
metric writing, resource samples, the cache, CSV cell safety, request limits and the web
worker class. Nothing here imports `jobs` or `monitoring` (docs/design.md, "Apps and layers")."""
