"""RedcapClient against the REDCap double on a real socket."""

from __future__ import annotations

from fionagw.tracking.redcap_api import RedcapClient
from support.redcap_double.fixtures import incoming_study as study


def test_real_socket_round_trip_with_drop(redcap_server):
    double = redcap_server.double
    client = RedcapClient(
        redcap_server.url, double.token("Incoming"), "Incoming", retries=2, backoff_s=0.0, timeout=5
    )
    double.drop_next(1)
    double.fail_next(1)
    assert client.import_records(study("9.1", 3)) == 1
    assert len(client.export_records(records=["9.1"])) == 4
    assert [c.fault for c in double.calls][:3] == ["drop", "error", None]
