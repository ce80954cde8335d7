"""Qt item models of the window (peewee classes live in app/store/schema.py)."""
