"""Who is calling: static bearer tokens and (optionally) OAuth access tokens."""
