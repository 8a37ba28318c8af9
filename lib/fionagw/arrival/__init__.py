"""Study arrival: quiet-period detection, quarantine tgz + md5, the incoming list, events.

detect.run(cfg) -> ArrivalReport      one detectStudyArrival pass (under cron_lock)
quarantine.quarantine_series(...)     quarantine/<Study>_<Series>.{tgz,md5sum,json}
incoming.upsert / remove_old / ...    the incoming list ("<epoch> <StudyUID> <json>")
events.record_event / list_events     DATADIR/events/<epoch_ns>-<type>-<StudyUID>.json
"""
