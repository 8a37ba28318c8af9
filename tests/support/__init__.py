"""Test support: the site and peer helpers, the Orthanc peer, the web fixtures, the REDCap
double and the synthetic studies. Importable because pyproject.toml puts tests/ on sys.path."""
