"""Events and notifications: what happened to a study, told to the people who care.

events.py    the event log (DATADIR/notify/events.jsonl) and ``emit``, called by the pipeline
payload.py   what a channel may send: allow-listed fields, de-identified identity, the report
channels.py  email, webhook, FHIR DiagnosticReport, DICOM encapsulated PDF, none
deliver.py   sendNotifications: every (event, channel) at least once, state on disk
"""

from fionagw.notify.events import emit, emit_check, emit_package, emit_send, emit_transfer

__all__ = ["emit", "emit_check", "emit_package", "emit_send", "emit_transfer"]
