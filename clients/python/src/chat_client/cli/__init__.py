"""The `chat` command: a thin layer over chat_client.Client (see main.py)."""
