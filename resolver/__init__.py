"""Names -> versions -> manifests, over pluggable registry backends."""
