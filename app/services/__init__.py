"""Use cases over the store: actions, training, listing, sample data."""
