"""The rule that keeps some content in the database although a store is configured:
small images (thumbnails never wait on the store), JavaScript and CSS (assets)."""

import ast
import json
from dataclasses import dataclass, field

from ..errors import ConfigError

#: the default rule, as the platform's older addons had it: images up to 50 KB, every
#: JavaScript and CSS (0: whatever the size) stay in the database
DEFAULT_KEEP_IN_DATABASE = {"image/": 51200, "application/javascript": 0, "text/css": 0}

#: the ir.config_parameter of the older addons holding the rule (a dict literal)
KEEP_IN_DATABASE_PARAM = "ir_attachment.storage.force.database"


@dataclass(frozen=True)
class KeepInDatabase:
    """Which content stays in the database although a store is configured.

    ``limits`` maps a mimetype prefix (``image/``) or a whole mimetype
    (``text/css``) to the largest size kept, in bytes; 0 keeps any size.
    """

    limits: dict = field(default_factory=lambda: dict(DEFAULT_KEEP_IN_DATABASE))

    @classmethod
    def parse(cls, text, *, source=KEEP_IN_DATABASE_PARAM):
        """Parse the rule from JSON or a Python dict literal (the older addons' form)."""
        if not text or not str(text).strip():
            return cls()
        try:
            value = json.loads(text)
        except ValueError:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                raise ConfigError(
                    source,
                    f"{text!r} is not a mapping of mimetype to size, such as "
                    '{"image/": 51200, "application/javascript": 0, "text/css": 0}',
                ) from None
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
            for k, v in value.items()
        ):
            raise ConfigError(
                source, f"{text!r} must map mimetypes (text) to sizes (whole numbers >= 0)"
            )
        return cls(dict(value))

    def keeps(self, mimetype, size):
        """True when content of ``mimetype`` and ``size`` bytes stays in the database."""
        if not mimetype:
            return False
        for prefix, limit in self.limits.items():
            if mimetype.startswith(prefix) and (limit == 0 or size <= limit):
                return True
        return False
