"""The corporate network proxy: the mitmproxy addon and the inspection behind it."""
