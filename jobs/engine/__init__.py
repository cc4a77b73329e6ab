"""Running batches on RQ: which queue and when (dispatch, windows), how fast (throttle,
optimizer), whether at all (breaker), how items travel (payload codecs), the worker class and
the Prometheus collector. The engine knows the data-type contract, never a data type
(docs/design.md, "Apps and layers")."""
