"""Library code for the web pages, without HTTP: what the pages query and show (users and roles,
settings, log search, status figures and plots, masking, Assign's and Attach's queries). The
Flask application is the package ``fionaweb`` (``php-free-web/``); its views call these."""
