"""Declarative mappings from vendor records to the canonical model (``mappings/<source>.yaml``)."""

from crmbridge.mapping.engine import MappingError, SourceMapping, StreamMapper, labels_used

__all__ = ["MappingError", "SourceMapping", "StreamMapper", "labels_used"]
