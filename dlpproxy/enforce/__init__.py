"""Doing what the policy decided: reversible redaction and restoring answers."""
