"""Series classification: header reading, the series JSON record, classifyRules.json, CSA."""

from fionagw.classify.rules import Classification, RulesError, RuleSet
from fionagw.classify.series import (
    Connection,
    NotDicomError,
    image_record,
    read_header,
    update_series,
)

__all__ = [
    "Classification",
    "Connection",
    "NotDicomError",
    "RuleSet",
    "RulesError",
    "image_record",
    "read_header",
    "update_series",
]
