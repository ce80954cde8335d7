"""`hashlens serve`: the ACI over HTTP as Media Server answers it (no Qt here)."""
