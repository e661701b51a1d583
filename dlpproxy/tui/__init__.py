"""The terminal admin console (`dlpproxy tui`): live decisions, incidents, statistics, the policy.

`queries` reads the audit store with indexed, keyset-paged SQL (never the whole table);
`policy_file` edits the policy file in place and writes it atomically after validation; `app` and
the screens are the textual user interface. Only `dlpproxy tui` imports textual.
"""
