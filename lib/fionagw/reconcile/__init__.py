"""Reconciliation: is what the gateway sent really in the research PACS? (FIONA's
whatIsInIDS7 / whatIsNotInIDS7.) manifest.py records what each transfer sent; check.py asks
the PACS, records the answer in the tracker and queues a resend of what is missing."""
