"""Data types: what a record means and how hard the cluster may push each kind of work."""

from jobs.datatypes.base import BatchContext, Handler, RecordRejected
from jobs.datatypes.registry import DataTypeSpec, get_data_type, known_data_types, parse_rate

__all__ = [
    "BatchContext",
    "DataTypeSpec",
    "Handler",
    "RecordRejected",
    "get_data_type",
    "known_data_types",
    "parse_rate",
]
