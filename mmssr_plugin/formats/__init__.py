"""Readers and writers of dataset and score formats other than the plugin's own."""
