"""A login through mod_auth_form (form login, users in an htpasswd file) with the session held by
mod_rhythm_session: the user stays logged in across requests, and logging out deletes the
session."""

import subprocess
import urllib.parse

from rhythm_httpd import COOKIE, Browser, Httpd

AUTH = """
<Location /private>
    AuthType form
    AuthName members
    AuthFormProvider file
    AuthUserFile "{dir}/htpasswd"
    AuthFormLoginRequiredLocation /login.html
    Session On
    RhythmSession On
    Require valid-user
</Location>
<Location /dologin>
    SetHandler form-login-handler
    AuthType form
    AuthName members
    AuthFormProvider file
    AuthUserFile "{dir}/htpasswd"
    AuthFormLoginRequiredLocation /login.html
    AuthFormLoginSuccessLocation /private/secret.html
    Session On
    RhythmSession On
</Location>
<Location /dologout>
    SetHandler form-logout-handler
    AuthType form
    AuthName members
    AuthFormLogoutLocation /login.html
    Session On
    RhythmSession On
</Location>
"""


def auth_server():
    h = Httpd(AUTH, modules=["auth_form", "authn_file", "authz_user"], name="authform")
    subprocess.run(["htpasswd", "-cbB", str(h.dir / "htpasswd"), "alice", "s3cret"], check=True,
                   capture_output=True)
    (h.dir / "htdocs" / "private").mkdir()
    (h.dir / "htdocs" / "private" / "secret.html").write_text("the secret\n")
    (h.dir / "htdocs" / "login.html").write_text("please log in\n")
    return h


def login(b, password):
    body = urllib.parse.urlencode({"httpd_username": "alice", "httpd_password": password})
    return b.get("/dologin", method="POST", body=body,
                 headers={"Content-Type": "application/x-www-form-urlencoded"})


def location(headers):
    return dict((k.lower(), v) for k, v in headers).get("location", "")


def test_form_login_keeps_the_user_logged_in():
    with auth_server() as h:
        b = Browser(h)
        status, headers, _ = b.get("/private/secret.html")
        assert status == 302 and location(headers).endswith("/login.html")

        status, headers, _ = login(b, "wrong")
        assert COOKIE not in b.cookies
        status, _, text = b.get("/private/secret.html")
        assert status == 302

        status, headers, _ = login(b, "s3cret")
        assert status == 302 and location(headers).endswith("/private/secret.html")
        assert COOKIE in b.cookies
        for _ in range(5):
            status, _, text = b.get("/private/secret.html")
            assert (status, text) == (200, "the secret\n")
        assert h.status()["RhythmSessions"] == 1

        # Another browser with a forged cookie is not logged in.
        other = Browser(h)
        other.cookies[COOKIE] = b.cookies[COOKIE][:-2] + "AA"
        assert other.get("/private/secret.html")[0] == 302

        # Logging out empties the session, which deletes it.
        status, headers, _ = b.get("/dologout")
        assert status == 307 or status == 302
        assert b.get("/private/secret.html")[0] == 302
        st = h.status()
        assert st["RhythmSessions"] == 0 and st["RhythmDeletions"] == 1
