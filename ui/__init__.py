"""The Qt desktop window of Hashlens: depends on app/, never on peewee."""
