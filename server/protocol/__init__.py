"""The wire: client frames decoded (size-limited, validated) and server messages encoded once."""
