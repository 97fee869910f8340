"""Turning a message's stored bodies into a safe HTML document: the CSS and HTML sanitisers,
quote folding and plain-text linkifying. Everything here is pure: no database, no network."""
