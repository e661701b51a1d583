"""Fingerprint index of the company's own code and documents.

`normalise` turns text into token streams (code: comments dropped, identifiers and literals as
classes; prose: case-folded words), `winnow` hashes their k-grams and selects fingerprints,
`store` keeps only those hashes in SQLite, `indexer` walks folders and git repositories into the
store, and `dlpproxy.detect.fingerprint` looks prompts up against it.
"""
