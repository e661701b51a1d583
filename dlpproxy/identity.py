"""Who sent a request: proxy authentication, a trusted header, or the client's address; and groups.

`rules/users.yaml`::

    version: 1
    users:            # user -> groups
      alice: [engineering]
      bob: [security-team]
    clients:          # client address or CIDR -> user, when nobody authenticated
      10.20.0.0/16: office-seoul
      127.0.0.1: local
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from dlpproxy.detect.yamlfile import LINE, check_fields, load_yaml
from dlpproxy.errors import DlpError, RulePackError


class IdentityError(DlpError):
    """users.yaml is invalid."""


@dataclass(frozen=True, slots=True)
class Directory:
    users: dict[str, tuple[str, ...]] = field(default_factory=dict)
    clients: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = ()

    def groups_of(self, user: str) -> tuple[str, ...]:
        return self.users.get(user, ())

    def user_for_address(self, address: str) -> str:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return ""
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        best = max(((net.prefixlen, name) for net, name in self.clients if ip in net), default=None)
        return best[1] if best else ""

    def identify(
        self, auth_user: str, header_user: str, address: str
    ) -> tuple[str, tuple[str, ...]]:
        """(user, groups): proxy auth first, then the trusted header, then the address map."""
        user = auth_user or header_user or self.user_for_address(address)
        return user, self.groups_of(user)


def load_directory(path: Path | None) -> Directory:
    """Load users.yaml; a missing path means an empty directory."""
    if path is None or not path.exists():
        return Directory()
    try:
        data = load_yaml(path)
        check_fields(data, {"version", "users", "clients"}, str(path), None)
    except RulePackError as exc:
        raise IdentityError(str(exc)) from None
    users: dict[str, tuple[str, ...]] = {}
    for name, groups in (data.get("users") or {}).items():
        if name == LINE:
            continue
        if not isinstance(groups, list):
            raise IdentityError(f"{path}: users.{name}: expected a list of groups")
        users[str(name)] = tuple(str(g) for g in groups)
    clients = []
    for net, name in (data.get("clients") or {}).items():
        if net == LINE:
            continue
        try:
            clients.append((ipaddress.ip_network(str(net), strict=False), str(name)))
        except ValueError:
            raise IdentityError(f"{path}: clients: '{net}' is not an address or CIDR") from None
    return Directory(users, tuple(clients))
