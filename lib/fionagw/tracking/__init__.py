"""Tracking of studies and transfer requests: tracker backends, the REDCap API client, secrets."""
