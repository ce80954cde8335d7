"""Icons and the application icon of the Hashlens window, read with importlib.resources."""
