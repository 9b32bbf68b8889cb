"""A login through mod_auth_form (form login, users in an htpasswd file) with the session held by
mod_rhythm_session: the user stays logged in across requests, logging out deletes the session,
and a login moves the session to a new ID (RhythmSessionRenewOnLogin); test_backup.py follows
the old and the new ID into the bank and through a failover."""

import re
import subprocess
import urllib.parse

from rhythm_httpd import APP_LOCATION, COOKIE, Browser, Httpd, backed_server, count_of

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


AUTH_MODULES = ["auth_form", "authn_file", "authz_user"]


def auth_server(name="authform", nodes=(), site=""):
    """A server with the form login and the counter pages (/app, the same session cookie);
    backed by `nodes` when given; `site`: more configuration."""
    site = AUTH + APP_LOCATION + site
    if nodes:
        h = backed_server(name, nodes, site=site, modules=AUTH_MODULES)
    else:
        h = Httpd(site, modules=AUTH_MODULES, name=name)
    return with_form_login(h)


def with_form_login(h):
    """`h` (not started, its site including AUTH) with what the form login reads: the user alice
    (password s3cret) in its htpasswd file, the login page and the private page."""
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
        # (Its first character changed: the last one carries only two bits of the ID.)
        real = b.cookies[COOKIE]
        other.cookies[COOKIE] = ("B" if real[0] == "A" else "A") + real[1:]
        assert other.get("/private/secret.html")[0] == 302, (real, other.cookies[COOKIE])

        # Logging out empties the session, which deletes it.
        status, headers, _ = b.get("/dologout")
        assert status == 307 or status == 302
        assert b.get("/private/secret.html")[0] == 302
        st = h.status()
        assert st["RhythmSessions"] == 0 and st["RhythmDeletions"] == 1


# ---- a new session ID at each login --------------------------------------------------------------

def counted_then_logged_in(h):
    """A browser that counts to 3 on /app (a session from before the login: the ID an attacker
    could have planted or learned), then logs in; returns it and the ID from before."""
    b = Browser(h)
    for _ in range(3):
        b.get("/app/counter")
    before = b.cookies[COOKIE]
    status, headers, _ = login(b, "s3cret")
    assert status == 302 and location(headers).endswith("/private/secret.html")
    return b, before


def as_holder_of(h, session_id):
    """A browser that presents `session_id`, as an attacker who knew it would."""
    other = Browser(h)
    other.cookies[COOKIE] = session_id
    return other


def test_a_login_moves_the_session_to_a_new_id_and_the_old_one_is_dead():
    with auth_server() as h:
        b, before = counted_then_logged_in(h)
        after = b.cookies[COOKIE]
        assert after != before
        assert b.get("/private/secret.html")[:3:2] == (200, "the secret\n")
        assert count_of(b.get("/app/counter")[2]) == 4  # what the session held came along
        attacker = as_holder_of(h, before)
        assert attacker.get("/private/secret.html")[0] == 302
        assert count_of(attacker.get("/app/counter")[2]) == 1  # a new session, not the user's
        assert attacker.cookies[COOKIE] not in (before, after)
        st = h.status()
        assert st["RhythmSessionsRenewed"] == 1
        assert re.search(r"RS0109: session \S{6}\.\.\. renewed at a login", h.log_text())


def test_a_second_login_as_the_same_user_keeps_the_id():
    with auth_server() as h:
        b, _ = counted_then_logged_in(h)
        after = b.cookies[COOKIE]
        login(b, "s3cret")
        assert b.cookies[COOKIE] == after
        assert h.status()["RhythmSessionsRenewed"] == 1


def test_renewal_can_be_switched_off():
    with auth_server(site="RhythmSessionRenewOnLogin Off") as h:
        b, before = counted_then_logged_in(h)
        assert b.cookies[COOKIE] == before
        assert b.get("/private/secret.html")[0] == 200
        assert h.status()["RhythmSessionsRenewed"] == 0


def test_a_login_key_the_administrator_names():
    # The application logs users in itself, writing "uid" through SessionHeader: a change of it
    # renews the ID; mod_auth_form's key no longer counts.
    with auth_server(site="RhythmSessionLoginKey uid") as h:
        b, before = counted_then_logged_in(h)
        assert b.cookies[COOKIE] == before
        b.get("/app/set?uid=42")
        renewed = b.cookies[COOKIE]
        assert renewed != before
        assert as_holder_of(h, before).get("/app/show")[2].find("uid=42") < 0
        assert "uid=42" in b.get("/app/show")[2]
