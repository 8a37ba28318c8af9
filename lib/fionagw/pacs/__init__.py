"""Query/retrieve from the clinical PACS and the scanners (C-FIND, C-MOVE, C-GET), the
inventory (getAllPatients), completing studies that arrived short (moveFromScanner), resend
from PACS, and the MPPS receiver (mppsctl). The C-FIND exchange itself (find.py) is shared
with the research PACS verification (send/verify.py)."""
