"""Metrics: the Prometheus text (printed and served) and the heartbeat POST to a real HTTPS server."""

from __future__ import annotations

import json
import os
import re
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from fionagw.arrival.events import record_event
from fionagw.config import load_config
from fionagw.ops.heartbeat_post import PostError, heartbeat_payload, post_if_due
from fionagw.ops.jobstate import last_run, record_run
from fionagw.ops.metrics_server import MetricsServer
from support.orthanc_peer import make_tls_files
from support.site import free_port, run_bin, storescu, wait_for, write_config
from support.synth import standard_mr_study

_SAMPLE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$'
)


def parse_exposition(text: str) -> dict[str, float]:
    """Check the text format 0.0.4 strictly (HELP and TYPE before each family's samples) and
    return {'name{labels}': value}."""
    samples: dict[str, float] = {}
    typed: set[str] = set()
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("counter", "gauge"), line
            typed.add(name)
            continue
        m = _SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        assert m.group(1) in typed, f"sample before its TYPE: {line!r}"
        samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return samples


def metrics(config: Path) -> dict[str, float]:
    r = run_bin("fiona", "metrics", config=config)
    assert r.returncode == 0, r.stderr
    return parse_exposition(r.stdout)


def archive_totals(cfg) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    files = [p for p in cfg.paths.archive.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


@pytest.mark.slow
def test_counters_follow_real_traffic(tmp_path: Path) -> None:
    config = write_config(tmp_path, arrival={"quiet_seconds": 1})
    cfg = load_config(config)
    try:
        for program in ("processSingleFile", "storectl"):
            assert run_bin(program, "start", config=config).returncode == 0
        m = metrics(config)
        assert m["fionagw_images_received_total"] == 0 and m["fionagw_studies_arrived_total"] == 0
        assert m['fionagw_service_up{service="storectl"}'] == 1
        assert m["fionagw_disk_free_bytes"] > 0 and 0 < m["fionagw_disk_free_ratio"] <= 1

        a = standard_mr_study(tmp_path / "a", n_per_series=3, seed=1)
        assert storescu(cfg.dicom_port, tmp_path / "a").returncode == 0
        wait_for(lambda: archive_totals(cfg)[0] == len(a), what="study A archived")
        m = metrics(config)
        assert (
            m["fionagw_images_received_total"],
            m["fionagw_received_bytes_total"],
        ) == archive_totals(cfg)

        b = standard_mr_study(tmp_path / "b", vendor="GE", n_per_series=2, seed=2)
        assert storescu(cfg.dicom_port, tmp_path / "b").returncode == 0
        wait_for(lambda: archive_totals(cfg)[0] == len(a) + len(b), what="study B archived")
        time.sleep(2.5)  # processSingleFile's write-behind, then the quiet period
        assert run_bin("detectStudyArrival", config=config).returncode == 0
        m = metrics(config)
        assert m["fionagw_images_received_total"] == len(a) + len(b)
        assert (
            m["fionagw_images_received_total"],
            m["fionagw_received_bytes_total"],
        ) == archive_totals(cfg)
        assert m["fionagw_studies_arrived_total"] == 2
        assert m['fionagw_queue_depth{queue="incoming_list"}'] == 2
        assert m['fionagw_service_up{service="processSingleFile"}'] == 1
    finally:
        for program in ("storectl", "processSingleFile"):
            run_bin(program, "stop", config=config)

    # counters never go back (a study deleted by retention stays counted) ...
    received = m["fionagw_images_received_total"]
    first = sorted(cfg.paths.archive.iterdir())[0]
    for f in first.iterdir():
        f.unlink()
    assert metrics(config)["fionagw_images_received_total"] == received
    # ... and a folder whose mtime did not move is not opened again (a scrape is not an archive walk)
    second = sorted(cfg.paths.archive.iterdir())[1]
    old = time.time_ns() - 3600 * 10**9
    os.utime(second, ns=(old, old))
    assert metrics(config)["fionagw_images_received_total"] == received  # recounted: nothing new
    (second / "MR.extra").write_bytes(b"x" * 10)
    os.utime(second, ns=(old, old))  # hide the change from the folder's mtime
    assert metrics(config)["fionagw_images_received_total"] == received
    os.utime(second, None)  # the folder changed: it is recounted, and the new file counted
    assert metrics(config)["fionagw_images_received_total"] == received + 1


@pytest.mark.slow
def test_requests_failures_and_jobs(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    cfg = load_config(config)
    cfg.paths.create()
    for name in ("1.2_ALPHA_ALPHA001_1.json", "1.3_ALPHA_ALPHA002_1.json"):
        (cfg.paths.transfer_requests / name).write_text("{}")
    (cfg.paths.transfers_done / "1.1_ALPHA_ALPHA000_1.json").write_text("{}")
    # one failed request leaves FIONA's two files; its attempt left one event
    (cfg.paths.transfers_fail / "1.4_ALPHA_ALPHA003_1.json_fail.log").write_text("{}")
    (cfg.paths.transfers_fail / "1.4_ALPHA_ALPHA003_1.json_fail_messages.log").write_text(
        '{"error": "release check", "reason": "release_check"}'
    )
    record_event(
        cfg, "transfer-attempted", study_uid="1.4", outcome="failed", reason="release_check"
    )
    record_run(cfg, "anonymizeAndSend", True, 12.5, "1 sent")
    record_run(cfg, "populateIncoming", False, 0.75, "tracker unavailable")
    m = metrics(config)
    assert m['fionagw_transfer_requests{state="pending"}'] == 2
    assert m['fionagw_transfer_requests{state="done"}'] == 1
    assert m['fionagw_transfer_requests{state="failed"}'] == 1
    assert m['fionagw_send_failures_total{reason="release_check"}'] == 1
    assert m['fionagw_transfer_attempts_total{outcome="failed"}'] == 1
    assert m['fionagw_failed_requests{reason="release_check"}'] == 1
    assert m['fionagw_job_last_duration_seconds{job="anonymizeAndSend"}'] == 12.5
    assert m['fionagw_job_last_success{job="anonymizeAndSend"}'] == 1
    assert m['fionagw_job_last_success{job="populateIncoming"}'] == 0
    assert m['fionagw_job_running{job="heartbeat"}'] == 0
    assert m['fionagw_service_up{service="storectl"}'] == 0
    # counted once; a retry that fails too is one more attempt, not one more failed request
    assert metrics(config)['fionagw_send_failures_total{reason="release_check"}'] == 1
    record_event(cfg, "transfer-attempted", study_uid="1.4", outcome="deferred", reason="send")
    m = metrics(config)
    assert m['fionagw_send_failures_total{reason="send"}'] == 1
    assert m['fionagw_transfer_attempts_total{outcome="deferred"}'] == 1
    assert m['fionagw_transfer_requests{state="failed"}'] == 1


def test_served_endpoint(tmp_path: Path) -> None:
    config = write_config(tmp_path, metrics={"port": free_port()})
    cfg = load_config(config)
    cfg.paths.create()
    server = MetricsServer(cfg)
    server.start()
    try:
        r = requests.get(server.url, timeout=10)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith(
            "text/plain; version=0.0.4"
        )
        m = parse_exposition(r.text)
        assert m["fionagw_images_received_total"] == 0 and "fionagw_scrape_duration_seconds" in m
        assert requests.get(server.url.replace("/metrics", "/"), timeout=10).status_code == 404
    finally:
        server.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url, timeout=5)


# --- heartbeat POST ------------------------------------------------------------------------------


class Receiver:
    """A real HTTPS endpoint that records each POST (headers and JSON body)."""

    def __init__(self, tls: dict[str, Path], status: int = 204) -> None:
        self.posts: list[dict[str, Any]] = []
        self.status = status
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.posts.append(
                    {"path": self.path, "headers": dict(self.headers), "json": json.loads(body)}
                )
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(tls["server_cert"]), str(tls["server_key"]))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}/heartbeat"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver(tmp_path: Path):  # type: ignore[no-untyped-def]
    tls = make_tls_files(tmp_path / "tls")
    r = Receiver(tls)
    r.tls = tls  # type: ignore[attr-defined]
    yield r
    r.close()


def _token_file(tmp_path: Path, mode: int = 0o600) -> tuple[Path, str]:
    token = "hb-" + os.urandom(12).hex()
    path = tmp_path / "heartbeat.token"
    path.write_text(token + "\n")
    path.chmod(mode)
    return path, token


@pytest.mark.slow
def test_heartbeat_post_verified_tls_and_token(tmp_path: Path, receiver) -> None:  # type: ignore[no-untyped-def]
    token_file, token = _token_file(tmp_path)
    hb = {"post_url": receiver.url, "post_token_file": str(token_file), "post_interval_seconds": 60}
    config = write_config(tmp_path, heartbeat=hb)
    cfg = load_config(config)
    cfg.paths.create()
    # our test CA is not trusted by default: TLS is verified, nothing is sent
    r = run_bin("fiona", "metrics", "--post", config=config)
    assert (
        r.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in r.stderr and token not in r.stderr
    ), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not receiver.posts

    config = write_config(tmp_path, heartbeat={**hb, "post_ca_bundle": str(receiver.tls["ca"])})
    r = run_bin("fiona", "metrics", "--post", config=config)
    assert r.returncode == 0 and "HTTP 204" in r.stdout, r.stdout + r.stderr
    (post,) = receiver.posts
    assert post["headers"]["Authorization"] == f"Bearer {token}"
    body = post["json"]
    assert body["hostname"] and body["version"] and body["healthy"] is False
    assert set(body["down"]) == {"storectl", "processSingleFile"}
    sys_ = body["system"]
    assert sys_["cpu"]["count"] >= 1 and sys_["memory"]["total_bytes"] > 0
    assert sys_["disk"]["free_bytes"] > 0 and sys_["disk"]["path"] == str(cfg.datadir)
    assert {s["name"] for s in body["services"]} >= {"storectl", "processSingleFile"}
    assert "arrived_jobs" in body["queues"]
    run = last_run(load_config(config), "heartbeatPost")
    assert run is not None and run.ok and run.summary == "HTTP 204"
    for log in cfg.paths.logs.glob("*"):
        assert token not in log.read_text(errors="replace"), log

    # each part can be switched off
    config = write_config(
        tmp_path,
        heartbeat={
            **hb,
            "post_ca_bundle": str(receiver.tls["ca"]),
            "post_system": False,
            "post_queues": False,
        },
    )
    body = heartbeat_payload(load_config(config))
    assert "system" not in body and "queues" not in body and "services" in body


@pytest.mark.slow
def test_heartbeat_post_interval_and_retry(tmp_path: Path, receiver) -> None:  # type: ignore[no-untyped-def]
    token_file, _token = _token_file(tmp_path)
    config = write_config(
        tmp_path,
        heartbeat={
            "post_url": receiver.url,
            "post_token_file": str(token_file),
            "post_ca_bundle": str(receiver.tls["ca"]),
            "post_interval_seconds": 300,
        },
    )
    cfg = load_config(config)
    cfg.paths.create()
    now = time.time()
    assert post_if_due(cfg, now=now) == "HTTP 204"
    assert post_if_due(cfg, now=now + 10) is None  # not due yet
    receiver.status = 503
    with pytest.raises(PostError, match="HTTP 503"):
        post_if_due(cfg, now=now + 301)
    assert len(receiver.posts) == 2
    run = last_run(cfg, "heartbeatPost")
    assert run is not None and not run.ok
    receiver.status = 200
    assert (
        post_if_due(cfg, now=time.time() + 10) is None
    )  # a failure waits for the next interval too
    assert post_if_due(cfg, now=time.time() + 301) == "HTTP 200"
    # a token file others can read is refused, in one line
    token_file.chmod(0o644)
    r = run_bin("fiona", "metrics", "--post", config=config)
    assert r.returncode == 1 and "chmod 600" in r.stderr and len(r.stderr.strip().splitlines()) == 1
