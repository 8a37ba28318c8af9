"""Quality control before release: checks on each stable study, per-project gates that hold a
transfer request, audited bypasses, and the per-study report.

Modules: scan.py (the facts of a study, from its headers), diffusion.py (b-values and
directions in every vendor's encoding), checks.py (the checks), nifti.py (NIfTI bundles),
results.py and store.py (the stored result), run.py (run and evaluate, freshness), gate.py
(what holds a request), bypass.py (who may let a failed check pass), report.py and its
formats (HTML, PDF, JSON, TXT), events.py (the one hook for notifications).
The rules and gates are read by config/qc.py.
"""
