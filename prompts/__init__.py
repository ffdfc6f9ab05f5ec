"""Prompt templates and built-in style capsules (shipped as package data)."""
