"""Workflows: containerized (or local) processing of studies, FIONA's Workflows application.

Streams (config.json ``Streams``, typed in fionagw/config/workflows.py) say what starts a job
(triggers.py: at arrival or by hand) and which steps it runs. Jobs are JSON lines
(jobs.py), run by runOneJob (worker.py) up to ``workflows.max_concurrent`` at once, each step
with its limits (runner.py; containers through runtime.py); their output is checked, sent,
verified and recorded (results.py). control.py cancels and retries.
"""
