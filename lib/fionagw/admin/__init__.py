"""Administration: the audit trail (:mod:`.audit`), the Settings page's editing of config.json
and the secrets file (:mod:`.settings`), and the restart requests ``fiona run`` acts on."""
