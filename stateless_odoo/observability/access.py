"""Who may read an operations endpoint (``/metrics``, ``/web/health/deep``): a bearer
token, allowed networks, or both. Served before Odoo: no session, no database."""

import hmac
import ipaddress
from dataclasses import dataclass, field

from ..config import EnvReader, Secret
from ..errors import ConfigError

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
MIN_TOKEN = 16


@dataclass(frozen=True)
class Access:
    """``token``: requests must send ``Authorization: Bearer <token>``; ``allow``: the
    networks requests must come from (empty: any). Read from ``<prefix>_TOKEN`` and
    ``<prefix>_ALLOW``; without either, loopback only; with a token alone, anyone who
    has it."""

    prefix: str
    token: Secret | None = field(default=None, repr=False)
    allow: tuple = LOOPBACK

    @classmethod
    def from_env(cls, prefix, environ=None):
        env = environ if isinstance(environ, EnvReader) else EnvReader(environ)
        token = env.secret(f"{prefix}_TOKEN")
        if token and len(token.reveal()) < MIN_TOKEN:
            raise ConfigError(f"{prefix}_TOKEN", f"is shorter than {MIN_TOKEN} characters")
        allow_text = env.str(f"{prefix}_ALLOW")
        if allow_text is None:
            allow = () if token else LOOPBACK
        elif allow_text.strip() == "*":
            allow = ()
        else:
            allow = tuple(
                _network(f"{prefix}_ALLOW", item.strip())
                for item in allow_text.split(",")
                if item.strip()
            )
        return cls(prefix, token, allow)

    def allows(self, remote_addr, authorization, forwarded_for=None):
        """Whether a request from ``remote_addr`` with this ``Authorization`` header may
        read the endpoint: ``(allowed, why not)``.

        A request that came through a proxy (``X-Forwarded-For``, ``forwarded_for``) is
        judged by the client the proxy saw too (the header's last address, the one the
        proxy added): nginx on the same host as Odoo connects from loopback, which the
        default allowlist lets in, whoever its client is. Both addresses must be
        allowed, so a forged header never widens access."""
        if self.allow:
            addresses = [remote_addr]
            if forwarded_for is not None:
                addresses.append(forwarded_for.split(",")[-1].strip())
            for text in addresses:
                try:
                    address = ipaddress.ip_address((text or "").split("%")[0])
                except ValueError:
                    return False, "unknown client address"
                if not any(address in network for network in self.allow):
                    return False, f"address not allowed ({self.prefix}_ALLOW)"
        if self.token:
            scheme, _, given = (authorization or "").partition(" ")
            expected = self.token.reveal().encode()
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), expected
            ):
                return False, f"missing or wrong bearer token ({self.prefix}_TOKEN)"
        return True, None

    def refusal(self, environ, start_response):
        """``None`` when the WSGI request may read the endpoint, else the 403 body."""
        allowed, why = self.allows(
            environ.get("REMOTE_ADDR"),
            environ.get("HTTP_AUTHORIZATION"),
            environ.get("HTTP_X_FORWARDED_FOR"),
        )
        if allowed:
            return None
        start_response(
            "403 Forbidden", [("Cache-Control", "no-store"), ("Content-Type", "text/plain")]
        )
        return [f"forbidden: {why}\n".encode()]


def _network(variable, text):
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ConfigError(
            variable, f"{text!r} is not an address or a network (10.0.0.0/8)"
        ) from None
