"""Widgets of the app, one pane per module."""
