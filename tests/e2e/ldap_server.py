"""A real LDAP server for the proxy-authentication tests: ldaptor (Twisted) on 127.0.0.1.

Run as a process: `python -m tests.e2e.ldap_server PORT_FILE`; it serves an in-memory directory
dc=hanbit,dc=test with a service account (cn=proxy,dc=hanbit,dc=test / proxy-secret) and the user
cn=minji,ou=people,dc=hanbit,dc=test (password `s3cret pass`, stored salted-SHA1 as directories
do), writes the port it listens on to PORT_FILE, and runs until terminated.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ldaptor.entry import sshaDigest
from ldaptor.inmemory import ReadOnlyInMemoryLDAPEntry
from ldaptor.interfaces import IConnectedLDAPEntry
from ldaptor.protocols.ldap.ldapserver import LDAPServer
from twisted.internet import reactor
from twisted.internet.protocol import ServerFactory
from twisted.python.components import registerAdapter

BASE = "dc=hanbit,dc=test"
SERVICE_DN, SERVICE_PASSWORD = f"cn=proxy,{BASE}", "proxy-secret"
PEOPLE = f"ou=people,{BASE}"
USER, PASSWORD = "minji", "s3cret pass"


def directory() -> ReadOnlyInMemoryLDAPEntry:
    root = ReadOnlyInMemoryLDAPEntry(BASE, {"objectClass": ["dcObject"], "dc": ["hanbit"]})
    root.addChild(
        "cn=proxy",
        {"objectClass": ["person"], "cn": ["proxy"], "userPassword": [SERVICE_PASSWORD]},
    )
    people = root.addChild("ou=people", {"objectClass": ["organizationalUnit"], "ou": ["people"]})
    people.addChild(
        f"cn={USER}",
        {
            "objectClass": ["person"], "cn": [USER], "sn": ["Kang"],
            "userPassword": [sshaDigest(PASSWORD.encode(), b"fixedsal")],
        },
    )  # fmt: skip
    return root


class DirectoryFactory(ServerFactory):
    protocol = LDAPServer

    def __init__(self, root: ReadOnlyInMemoryLDAPEntry) -> None:
        self.root = root

    def buildProtocol(self, addr: Any) -> LDAPServer:
        proto = self.protocol()
        proto.debug = False
        proto.factory = self
        return proto


registerAdapter(lambda factory: factory.root, DirectoryFactory, IConnectedLDAPEntry)


def main() -> None:
    port_file = Path(sys.argv[1])
    listening = reactor.listenTCP(0, DirectoryFactory(directory()), interface="127.0.0.1")  # type: ignore[attr-defined]
    port_file.write_text(str(listening.getHost().port))
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
