"""Series classification: header reading, the series record, classifyRules.json, Siemens CSA."""

from fionagw.classify.record import classify_file, image_record, update_series
from fionagw.classify.rules import Classification, RulesError, RuleSet
from fionagw.classify.series import Connection, NotDicomError, read_header

__all__ = [
    "Classification",
    "Connection",
    "classify_file",
    "NotDicomError",
    "RuleSet",
    "RulesError",
    "image_record",
    "read_header",
    "update_series",
]
