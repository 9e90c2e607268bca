"""A SAML 2.0 identity provider for Lockstep's tests, on pysaml2 (signatures by Debian's xmlsec1).

Test peer only: it makes a new RSA key and self-signed certificate at every start, signs in
whoever the test names without asking anything, and speaks plain HTTP on 127.0.0.1.
See README.md beside this file.
"""

import argparse
import base64
import warnings

# pysaml2 7.5 still names a cipher mode that `cryptography` moved; not ours to fix.
warnings.filterwarnings("ignore", message=".*has been moved to cryptography.hazmat.decrepit.*")

import datetime
import json
import re
import shutil
import sys
import tempfile
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, samlp
from saml2.assertion import Policy
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_EMAILADDRESS, NAMEID_FORMAT_PERSISTENT, NameID
from saml2.server import Server

SIGN_ALG = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
DIGEST_ALG = "http://www.w3.org/2001/04/xmlenc#sha256"
FAULTS = {
    "none",
    "unsigned",
    "response_signed_only",
    "wrapping",
    "altered_attribute",
    "wrong_audience",
    "expired",
    "denied",
}


def make_key_and_certificate(directory):
    """A new RSA key and a self-signed certificate, as PEM files in `directory`."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Lockstep test IdP")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_file = f"{directory}/idp.key"
    cert_file = f"{directory}/idp.crt"
    with open(key_file, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
    with open(cert_file, "wb") as out:
        out.write(certificate.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file


def make_idp(base, key_file, cert_file, xmlsec):
    config = IdPConfig()
    config.load(
        {
            "entityid": f"{base}/metadata",
            "service": {
                "idp": {
                    "name": "Lockstep test IdP",
                    "endpoints": {
                        "single_sign_on_service": [
                            (f"{base}/sso/redirect", BINDING_HTTP_REDIRECT),
                        ],
                    },
                    "name_id_format": [NAMEID_FORMAT_EMAILADDRESS, NAMEID_FORMAT_PERSISTENT],
                    "want_authn_requests_signed": False,
                    "sign_assertion": True,
                    "sign_response": False,
                },
            },
            "key_file": key_file,
            "cert_file": cert_file,
            "xmlsec_binary": xmlsec,
            "metadata": {},
            "signing_algorithm": SIGN_ALG,
            "digest_algorithm": DIGEST_ALG,
        }
    )
    return Server(config=config)


def release_policy(minutes):
    return Policy(
        {"default": {"lifetime": {"minutes": minutes}, "name_form": NAME_FORMAT_URI}},
        mds=None,
    )


ASSERTION = re.compile(r"<(?P<prefix>[A-Za-z_][\w.-]*:)?Assertion\b.*?</(?P=prefix)Assertion>", re.S)
SIGNATURE = re.compile(r"<(?P<prefix>[A-Za-z_][\w.-]*:)?Signature\b.*?</(?P=prefix)Signature>", re.S)
ATTRIBUTE_VALUE = re.compile(r"(<(?:[A-Za-z_][\w.-]*:)?AttributeValue\b[^>]*>)([^<]*)(<)")


def wrap_signed_assertion(xml, evil_email):
    """Signature wrapping: the signed assertion moved inside an unsigned copy of itself that names
    another subject (new ID, no signature, another e-mail address)."""
    match = ASSERTION.search(xml)
    if match is None:
        raise ValueError("no assertion to wrap")
    signed = match.group(0)
    evil = SIGNATURE.sub("", signed, count=1)
    evil = re.sub(r'\bID="[^"]*"', 'ID="_evil0123456789abcdef"', evil, count=1)
    evil = re.sub(r"(<(?:[A-Za-z_][\w.-]*:)?NameID\b[^>]*>)[^<]*", rf"\g<1>{evil_email}", evil, count=1)
    evil = ATTRIBUTE_VALUE.sub(lambda m: m.group(1) + evil_email + m.group(3), evil)
    closing = f"</{match.group('prefix') or ''}Assertion>"
    evil = evil[: -len(closing)] + signed + closing
    return xml[: match.start()] + evil + xml[match.end():]


def alter_first_attribute(xml):
    """Changes the first attribute value after signing."""
    altered, count = ATTRIBUTE_VALUE.subn(lambda m: m.group(1) + "altered-after-signing" + m.group(3), xml, count=1)
    if count != 1:
        raise ValueError("no attribute value to alter")
    return altered


class Peer:
    def __init__(self, base, idp, entity_id):
        self.base = base
        self.idp = idp
        self.entity_id = entity_id
        self.lock = threading.Lock()

    def metadata(self):
        with self.lock:
            return create_metadata_string(None, config=self.idp.config, valid=24).decode()

    def register_sp(self, metadata_xml):
        """Trusts a service provider from its metadata (as a real IdP is configured)."""
        with self.lock:
            self.idp.metadata.load("inline", metadata_xml)

    def sign_in(self, query):
        """Answers the POST form the browser would send to the SP for this AuthnRequest."""
        request_text = query.get("SAMLRequest")
        if not request_text:
            raise ValueError("SAMLRequest is missing")
        user = json.loads(query.get("user") or "{}")
        fault = query.get("fault") or "none"
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        with self.lock:
            request = self.idp.parse_authn_request(request_text, BINDING_HTTP_REDIRECT).message
            sp_entity_id = request.issuer.text if request.issuer is not None else None
            if not sp_entity_id or not self.idp.metadata.service(
                sp_entity_id, "spsso_descriptor", "assertion_consumer_service"
            ):
                raise ValueError("unknown service provider: POST its metadata to /sp first")
            # The ACS from the SP's metadata, checked against the request's.
            acs = self.idp.response_args(request, [BINDING_HTTP_POST])["destination"]
            if query.get("recipient"):
                acs = query["recipient"]
            in_response_to = request.id
            if "in_response_to" in query:
                in_response_to = query["in_response_to"] or None
            email = user.get("email", "test-user@example.com")
            identity = {name: list(values) for name, values in user.get("attributes", {}).items()}
            if user.get("name_id_format", "email") == "email":
                name_id = NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=email)
            else:
                name_id = NameID(format=NAMEID_FORMAT_PERSISTENT, text=user.get("name_id", "test-user-1"))
            if fault == "denied":
                response = self.idp.create_error_response(
                    in_response_to, acs, (samlp.STATUS_REQUEST_DENIED, "the test user said no"), sign=False
                )
                xml = str(response)
            else:
                xml = str(
                    self.idp.create_authn_response(
                        identity,
                        in_response_to,
                        acs,
                        "https://other-sp.example/metadata" if fault == "wrong_audience" else sp_entity_id,
                        name_id=name_id,
                        authn={
                            "class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
                            "authn_auth": self.entity_id,
                        },
                        sign_assertion=fault not in ("unsigned", "response_signed_only"),
                        sign_response=fault == "response_signed_only" or query.get("sign_response") == "1",
                        sign_alg=SIGN_ALG,
                        digest_alg=DIGEST_ALG,
                        release_policy=release_policy(-10 if fault == "expired" else 5),
                    )
                )
                if fault == "wrapping":
                    xml = wrap_signed_assertion(xml, "attacker@evil.example")
                elif fault == "altered_attribute":
                    xml = alter_first_attribute(xml)
        form = {"acs_url": acs, "SAMLResponse": base64.b64encode(xml.encode()).decode()}
        if query.get("RelayState") is not None:
            form["RelayState"] = query["RelayState"]
        return form


class Handler(BaseHTTPRequestHandler):
    peer = None

    def log_message(self, fmt, *args):
        pass

    def answer(self, status, content_type, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        try:
            if url.path == "/metadata":
                self.answer(200, "application/samlmetadata+xml", self.peer.metadata())
            elif url.path == "/sso/redirect":
                self.answer(200, "application/json", json.dumps(self.peer.sign_in(query)))
            else:
                self.answer(404, "application/json", json.dumps({"error": "not found"}))
        except Exception as err:  # a test peer: say what went wrong, keep serving
            sys.stderr.write(f"saml peer: {url.path}: {type(err).__name__}: {err}\n")
            self.answer(400, "application/json", json.dumps({"error": f"{type(err).__name__}: {err}"}))

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if url.path != "/sp" or length > 1 << 20:
                self.answer(404, "application/json", json.dumps({"error": "not found"}))
                return
            self.peer.register_sp(self.rfile.read(length).decode())
            self.answer(200, "application/json", json.dumps({"registered": True}))
        except Exception as err:  # a test peer: say what went wrong, keep serving
            sys.stderr.write(f"saml peer: {url.path}: {type(err).__name__}: {err}\n")
            self.answer(400, "application/json", json.dumps({"error": f"{type(err).__name__}: {err}"}))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--xmlsec", default=shutil.which("xmlsec1") or "/usr/bin/xmlsec1")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="lockstep-saml-peer.")
    try:
        server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
        base = f"http://127.0.0.1:{server.server_address[1]}"
        key_file, cert_file = make_key_and_certificate(workdir)
        idp = make_idp(base, key_file, cert_file, args.xmlsec)
        Handler.peer = Peer(base, idp, f"{base}/metadata")
        ready = {
            "base": base,
            "entity_id": f"{base}/metadata",
            "metadata_url": f"{base}/metadata",
            "sso_url": f"{base}/sso/redirect",
        }
        print(json.dumps(ready), flush=True)
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
