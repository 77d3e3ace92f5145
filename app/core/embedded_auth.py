"""The embedded database's one user: credentials generated into DATA_DIR and provisioned once.

SecantusDB checks SCRAM-SHA-256 credentials when started with --auth, and its users are created
by connecting once without --auth (see `secantus --help`). So the first start on a data
directory (a new one, or one an older version left without credentials) runs the database
without --auth on a loopback port just long enough to create the user, removes any other user
found there, and only then writes DATA_DIR/db_credentials (0600); every start after that runs
with --auth from the beginning. A data directory whose credentials file was deleted is
provisioned again the same way, with a new password.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure

from app.core.private_files import write_private_file

CREDENTIALS_FILE_NAME = "db_credentials"
USERNAME = "chat-server"
AUTH_SOURCE = "admin"
MECHANISM = "SCRAM-SHA-256"
_USER_EXISTS = 51003


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def uri(self, host: str, port: int) -> str:
        user, password = quote(self.username, safe=""), quote(self.password, safe="")
        return (
            f"mongodb://{user}:{password}@{host}:{port}/"
            f"?directConnection=true&authSource={AUTH_SOURCE}&authMechanism={MECHANISM}"
        )


def read_credentials(data_dir: Path) -> Credentials | None:
    """The credentials in DATA_DIR, or None when there are none (or they are unreadable)."""
    try:
        stored = json.loads((data_dir / CREDENTIALS_FILE_NAME).read_text())
        return Credentials(str(stored["username"]), str(stored["password"]))
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


async def provision(unauthenticated_uri: str, data_dir: Path, timeout: float) -> Credentials:
    """Create (or reset the password of) the app's user on a database running without --auth,
    remove every other user, then record the credentials in DATA_DIR (0600)."""
    credentials = Credentials(USERNAME, secrets.token_urlsafe(32))
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        unauthenticated_uri, serverSelectionTimeoutMS=int(timeout * 1000)
    )
    try:
        admin = client[AUTH_SOURCE]
        roles = [{"role": "root", "db": AUTH_SOURCE}]
        try:
            await admin.command("createUser", credentials.username, pwd=credentials.password, roles=roles)
        except OperationFailure as exc:
            if exc.code != _USER_EXISTS:
                raise
            await admin.command("updateUser", credentials.username, pwd=credentials.password, roles=roles)
        listed = await admin.command("usersInfo", 1)
        users = listed.get("users", [])
        assert isinstance(users, list)
        for user in users:
            if user.get("user") != credentials.username:
                await client[str(user.get("db", AUTH_SOURCE))].command("dropUser", user["user"])
    finally:
        await client.close()
    payload = {"username": credentials.username, "password": credentials.password}
    write_private_file(data_dir / CREDENTIALS_FILE_NAME, json.dumps(payload) + "\n")
    return credentials
