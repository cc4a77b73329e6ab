"""Data types: what a record means and how hard the cluster may push each kind of work."""

from .base import BatchContext, Handler, RecordRejected
from .registry import DataTypeSpec, UnknownDataType, get_data_type, known_data_types, parse_rate

__all__ = [
    "BatchContext",
    "DataTypeSpec",
    "Handler",
    "RecordRejected",
    "UnknownDataType",
    "get_data_type",
    "known_data_types",
    "parse_rate",
]
