"""Hypernetworks (A1111): small MLPs on the attention context, created, trained, saved and applied."""
