#!/usr/bin/env bash
# A real SMTP server for the tests (Debian's python3-aiosmtpd), on 127.0.0.1 with STARTTLS required
# and a test certificate (localhost, 127.0.0.1) issued by a throw-away test CA, both made here with openssl.
# With SMTP_TEST_IMPLICIT_TLS=1 it speaks implicit TLS instead (SMTPS, as on port 465: TLS from the first
# byte, no STARTTLS).
#
# Usage: smtp-test-server.sh DIR
#   Writes DIR/ca.pem (the CA to trust), DIR/cert.pem and DIR/key.pem, stores every message it receives
#   as DIR/mail/<n>.eml, logs to DIR/server.log, prints "SMTP_READY port=<n>" once it accepts
#   connections, and runs until killed.
#   With SMTP_TEST_USER and SMTP_TEST_PASSWORD set, AUTH (PLAIN/LOGIN, after STARTTLS) is required and only
#   that login is accepted; refused attempts are logged to DIR/auth-refused.log.
# Installed by: scripts/install-toolchain.sh --for-tests (python3-aiosmtpd, openssl).
set -euo pipefail
DIR=${1:?usage: smtp-test-server.sh DIR}
mkdir -p "$DIR/mail"
EC=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${EC[@]}" -days 2 -subj "/CN=Homedesk test CA" \
  -keyout "$DIR/ca-key.pem" -out "$DIR/ca.pem" 2>"$DIR/server.log"
openssl req "${EC[@]}" -subj "/CN=localhost" -keyout "$DIR/key.pem" -out "$DIR/server.csr" 2>>"$DIR/server.log"
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n' \
  >"$DIR/server.ext"
openssl x509 -req -in "$DIR/server.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca-key.pem" -CAcreateserial -days 2 \
  -extfile "$DIR/server.ext" -out "$DIR/cert.pem" 2>>"$DIR/server.log"
# Debian's python (the one python3-aiosmtpd installs into), not whatever python3 is first in PATH.
exec /usr/bin/python3 - "$DIR" 2>>"$DIR/server.log" <<'PY'
import asyncio, os, socket, ssl, sys
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

directory = sys.argv[1]

class Store:
    count = 0
    async def handle_DATA(self, server, session, envelope):
        Store.count += 1
        path = os.path.join(directory, "mail", f"{Store.count}.eml")
        with open(path + ".tmp", "wb") as f:
            f.write(b"X-Envelope-From: " + envelope.mail_from.encode() + b"\r\n")
            f.write(b"X-Envelope-To: " + ", ".join(envelope.rcpt_tos).encode() + b"\r\n")
            f.write(envelope.original_content or envelope.content)
        os.rename(path + ".tmp", path)  # complete files only
        return "250 Message accepted"

user, password = os.environ.get("SMTP_TEST_USER"), os.environ.get("SMTP_TEST_PASSWORD")

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == user.encode()
          and auth_data.password == password.encode())
    if not ok:
        with open(os.path.join(directory, "auth-refused.log"), "a") as log:
            log.write(f"{mechanism}\n")
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

implicit_tls = os.environ.get("SMTP_TEST_IMPLICIT_TLS") == "1"
# aiosmtpd's auth_require_tls looks for STARTTLS only; with implicit TLS the whole connection is encrypted.
auth = dict(authenticator=authenticator, auth_required=True, auth_require_tls=not implicit_tls) if user else {}
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem"))
with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
tls = dict(ssl_context=context) if implicit_tls else dict(tls_context=context, require_starttls=True)
controller = Controller(Store(), hostname="127.0.0.1", port=port, server_hostname="localhost", **tls, **auth)
controller.start()
print(f"SMTP_READY port={port}", flush=True)
try:
    asyncio.new_event_loop().run_forever()
finally:
    controller.stop()
PY
