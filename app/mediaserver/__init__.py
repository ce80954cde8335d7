"""Talking to a running Media Server: the ACI client, and pulling its databases into mirrors."""
