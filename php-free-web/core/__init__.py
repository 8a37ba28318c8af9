"""What every application shares: the app object's accessors, CSRF, security headers, error
pages, the /static/ files, the base template and the shared CSS."""
