"""Create what the tests need in keystone; run by scripts/services.sh up.

    /usr/bin/python3 keystone-setup.py KEY=VALUE...   (keys: see ARGS below)

Idempotent: finds or creates each project, user, role assignment, service,
endpoint and EC2 credential, resets the passwords and points the endpoints at
the current ports.  Then authenticates as the test user, finds its Swift
account in the catalog and sets the account's temp URL key through the
keystone proxy: an end-to-end check of keystone, authtoken and keystoneauth.
Runs on Debian's python3 (keystoneauth1 comes with python3-keystonemiddleware).
"""

import json
import sys
import time

import requests
from keystoneauth1 import exceptions as ksa_exceptions
from keystoneauth1 import session as ksa_session
from keystoneauth1.identity import v3

ARGS = (
    "keystone_url",  # http://127.0.0.1:PORT/v3
    "admin_password",  # of the bootstrap user "admin" (project "admin")
    "swift_url",  # http://127.0.0.1:PORT/v1/AUTH_%(project_id)s
    "region",
    "project",  # the test project ...
    "user",  # ... its user, role member ...
    "password",
    "ec2_access",  # ... and its EC2 (S3) credential
    "ec2_secret",
    "service_project",  # the proxy's authtoken/s3token user, role admin
    "service_user",
    "service_password",
    "temp_url_key",
    "timeout",
)
DOMAIN = "default"


def admin_session(a):
    auth = v3.Password(
        auth_url=a["keystone_url"],
        username="admin",
        password=a["admin_password"],
        project_name="admin",
        user_domain_id=DOMAIN,
        project_domain_id=DOMAIN,
    )
    return ksa_session.Session(auth=auth, timeout=10)


class Keystone:
    def __init__(self, session, url):
        self.s, self.url = session, url

    def get(self, collection, **filters):
        return self.s.get(f"{self.url}/{collection}", params=filters).json()[collection]

    def find_or_create(self, collection, body, **filters):
        """The first of ``collection`` matching ``filters``, else a new one."""
        found = self.get(collection, **filters)
        if found:
            return found[0]
        key = collection.rstrip("s")
        return self.s.post(f"{self.url}/{collection}", json={key: body}).json()[key]

    def project(self, name):
        body = {"name": name, "domain_id": DOMAIN}
        return self.find_or_create("projects", body, name=name, domain_id=DOMAIN)

    def user(self, name, password, project):
        body = {
            "name": name,
            "domain_id": DOMAIN,
            "password": password,
            "default_project_id": project["id"],
        }
        user = self.find_or_create("users", body, name=name, domain_id=DOMAIN)
        self.s.patch(f"{self.url}/users/{user['id']}", json={"user": {"password": password}})
        return user

    def grant(self, user, project, role_name):
        role = self.find_or_create("roles", {"name": role_name}, name=role_name)
        self.s.put(f"{self.url}/projects/{project['id']}/users/{user['id']}/roles/{role['id']}")

    def endpoint(self, service, interface, region, url):
        body = {
            "service_id": service["id"],
            "interface": interface,
            "region_id": region,
            "url": url,
        }
        found = self.find_or_create(
            "endpoints", body, service_id=service["id"], interface=interface, region_id=region
        )
        if found["url"] != url:
            self.s.patch(f"{self.url}/endpoints/{found['id']}", json={"endpoint": {"url": url}})

    def ec2_credential(self, user, project, access, secret):
        for cred in self.get("credentials", user_id=user["id"], type="ec2"):
            blob = json.loads(cred["blob"])
            if blob.get("access") == access:
                if blob.get("secret") == secret and cred["project_id"] == project["id"]:
                    return
                self.s.delete(f"{self.url}/credentials/{cred['id']}")
        blob = json.dumps({"access": access, "secret": secret, "trust_id": None})
        self.s.post(
            f"{self.url}/credentials",
            json={
                "credential": {
                    "type": "ec2",
                    "user_id": user["id"],
                    "project_id": project["id"],
                    "blob": blob,
                }
            },
        )


def setup(a):
    ks = Keystone(admin_session(a), a["keystone_url"])
    project = ks.project(a["project"])
    user = ks.user(a["user"], a["password"], project)
    ks.grant(user, project, "member")
    ks.ec2_credential(user, project, a["ec2_access"], a["ec2_secret"])
    service_project = ks.project(a["service_project"])
    service_user = ks.user(a["service_user"], a["service_password"], service_project)
    ks.grant(service_user, service_project, "admin")
    swift = ks.find_or_create(
        "services", {"name": "swift", "type": "object-store"}, type="object-store"
    )
    for interface in ("public", "internal", "admin"):
        ks.endpoint(swift, interface, a["region"], a["swift_url"])


def set_temp_url_key(a):
    """As the test user: the temp URL key on its account, through the catalog."""
    auth = v3.Password(
        auth_url=a["keystone_url"],
        username=a["user"],
        password=a["password"],
        project_name=a["project"],
        user_domain_id=DOMAIN,
        project_domain_id=DOMAIN,
    )
    session = ksa_session.Session(auth=auth, timeout=10)
    url = session.get_endpoint(
        service_type="object-store", interface="public", region_name=a["region"]
    )
    answer = requests.post(
        url,
        timeout=10,
        headers={
            "X-Auth-Token": session.get_token(),
            "X-Account-Meta-Temp-URL-Key": a["temp_url_key"],
        },
    )
    if answer.status_code != 204:
        raise RuntimeError(f"POST {url}: HTTP {answer.status_code} {answer.text[:200]}")
    return url


def main(argv):
    a = dict(arg.split("=", 1) for arg in argv)
    missing = set(ARGS) - set(a)
    if missing:
        sys.exit(f"keystone-setup.py: missing {', '.join(sorted(missing))}")
    setup(a)
    # The proxy may still be loading its pipeline or fetching its own token.
    deadline = time.monotonic() + float(a["timeout"])
    while True:
        try:
            url = set_temp_url_key(a)
            break
        except (RuntimeError, requests.RequestException, ksa_exceptions.ClientException) as exc:
            if time.monotonic() > deadline:
                sys.exit(f"keystone-setup.py: could not set the temp URL key: {exc}")
            time.sleep(0.3)
    print(url)


if __name__ == "__main__":
    main(sys.argv[1:])
