"""Shared helpers of the Python end-to-end suite: running `kms-stack`, AWS
clients bound to it (boto3 and the aws CLI), signed raw HTTP requests and
CloudTrail lookups.

Everything here talks to 127.0.0.0/8 only: `Stack.start` refuses an endpoint
whose host is not a loopback address.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable
from unittest import mock
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
# Also served by the session's stack (multi-Region keys).
ADDITIONAL_REGIONS = ("us-west-2", "eu-west-1")
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
ENDPOINT_RE = re.compile(r"KMS endpoint: (http://\S+)")
DNS_RE = re.compile(r"DNS resolver: (\S+)")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
JSON_1_1 = "application/x-amz-json-1.1"
KMS_TARGET = "TrentService."
CLOUDTRAIL_TARGET = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101."


@dataclass(frozen=True)
class Account:
    account_id: str
    access_key: str
    secret_key: str

    @property
    def root_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:root"


# The two accounts a fresh data dir is bootstrapped with (AWS documentation keys).
ACCOUNT_A = Account("111122223333", "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
ACCOUNT_B = Account("444455556666", "AKIAI44QH8DHBEXAMPLE", "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY")
ACCOUNTS = {"a": ACCOUNT_A, "b": ACCOUNT_B}


def isolate_aws_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """Remove every AWS_* variable and point the config files at /dev/null so
    no client reads the user's ~/.aws. Mutates and returns `env` (default:
    this process's environment)."""
    env = os.environ if env is None else env
    for k in [k for k in env if k.startswith("AWS_")]:
        del env[k]
    env["AWS_CONFIG_FILE"] = "/dev/null"
    env["AWS_SHARED_CREDENTIALS_FILE"] = "/dev/null"
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


def stack_binary() -> Path:
    """`$KMS_STACK_BIN`, else `$CARGO_TARGET_DIR/debug/kms-stack`, else
    `<repo>/target/debug/kms-stack`."""
    if os.environ.get("KMS_STACK_BIN"):
        return Path(os.environ["KMS_STACK_BIN"])
    if os.environ.get("CARGO_TARGET_DIR"):
        return Path(os.environ["CARGO_TARGET_DIR"]) / "debug" / "kms-stack"
    return REPO_ROOT / "target" / "debug" / "kms-stack"


def assert_loopback_endpoint(endpoint: str) -> None:
    parts = urlsplit(endpoint)
    assert parts.scheme == "http", endpoint
    host = parts.hostname or ""
    if host == "localhost":
        return
    assert ipaddress.ip_address(host).is_loopback, f"endpoint {endpoint} is not on loopback"


def retry_config():
    from botocore.config import Config

    return Config(
        retries={"max_attempts": 1, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
    )


def _die_with_parent() -> None:
    """In the child (Linux): get SIGTERM if the test process dies, so a killed
    pytest run leaves no stack behind."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Stack:
    """One `kms-stack` process on a data dir, serving on 127.0.0.1:<random>."""

    def __init__(self, data_dir: Path, log_path: Path | None = None):
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path) if log_path else self.data_dir.parent / f"{self.data_dir.name}-kms-stack.log"
        self.proc: subprocess.Popen | None = None
        self.endpoint: str | None = None
        # "127.0.0.1:<port>" of the public DNS resolver, from the stack's output.
        self.dns: str | None = None
        self._found = threading.Event()
        self._reader: threading.Thread | None = None

    # -- process ---------------------------------------------------------
    def start(self, timeout: float = START_TIMEOUT_S) -> "Stack":
        binary = stack_binary()
        if not binary.is_file():
            raise RuntimeError(
                f"kms-stack binary not found at {binary}: run `cargo build -p kms-stack` "
                "in the repository (or set KMS_STACK_BIN)"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.setdefault("NO_COLOR", "1")
        self._log = open(self.log_path, "ab", buffering=0)
        self.proc = subprocess.Popen(
            [
                str(binary),
                "--data-dir",
                str(self.data_dir),
                "--listen",
                "127.0.0.1:0",
                "--dns-port",
                "0",
                # Multi-Region keys replicate between the Regions of one stack.
                "--additional-regions",
                ",".join(ADDITIONAL_REGIONS),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=_die_with_parent,
        )
        self._reader = threading.Thread(target=self._drain, name="kms-stack-output", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while not self._found.wait(0.1):
            if self.proc.poll() is not None:
                self._reader.join(5)
                raise RuntimeError(
                    f"kms-stack exited with {self.proc.returncode} before serving; log {self.log_path}:\n"
                    + self.log_tail()
                )
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(
                    f"kms-stack did not print its endpoint within {timeout} s; log {self.log_path}:\n"
                    + self.log_tail()
                )
        assert self.endpoint is not None
        assert_loopback_endpoint(self.endpoint)
        return self

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            try:
                self._log.write(raw)
            except ValueError:  # log closed
                pass
            if not self._found.is_set():
                m = ENDPOINT_RE.search(raw.decode("utf-8", "replace"))
                if m:
                    self.endpoint = m.group(1).rstrip("/")
                    self._found.set()
            elif self.dns is None:
                m = DNS_RE.search(raw.decode("utf-8", "replace"))
                if m:
                    self.dns = m.group(1)
        self.proc.stdout.close()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGINT (Ctrl-C: clean shutdown), wait; returns the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(
                    f"kms-stack did not stop within {timeout} s of SIGINT; log {self.log_path}:\n" + self.log_tail()
                )
        if self._reader is not None:
            self._reader.join(10)
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text("utf-8", "replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    @property
    def log_dir(self) -> Path:
        """Where the audit service delivers CloudTrail log and digest files."""
        return cloudtrail_log_dir(self.data_dir)

    # -- endpoint ----------------------------------------------------------
    @property
    def host(self) -> str:
        return urlsplit(self.endpoint).hostname

    @property
    def dns_port(self) -> int:
        """The port of every DNS resolver of the stack (public and per VPC)."""
        deadline = time.monotonic() + 10
        while self.dns is None:
            assert time.monotonic() < deadline, "kms-stack printed no DNS resolver line"
            time.sleep(0.05)
        return int(self.dns.rsplit(":", 1)[1])

    @property
    def port(self) -> int:
        return urlsplit(self.endpoint).port

    def client(
        self,
        service: str,
        account: str = "a",
        *,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str = REGION,
    ):
        import boto3

        acct = ACCOUNTS[account]
        session = boto3.session.Session(
            aws_access_key_id=access_key or acct.access_key,
            aws_secret_access_key=secret_key or acct.secret_key,
            region_name=region,
        )
        return session.client(service, endpoint_url=self.endpoint, region_name=region, config=retry_config())


def cloudtrail_log_dir(data_dir: Path) -> Path:
    """The CloudTrail log dir of a stack's data dir (it stands for the S3 bucket):
    `AWSLogs/<account>/CloudTrail/...` and `AWSLogs/<account>/CloudTrail-Digest/...`."""
    return Path(data_dir) / "cloudtrail"


def start_stack(data_dir: Path, log_path: Path | None = None) -> Stack:
    """Start a stack on `data_dir` (created if missing) and wait until it serves."""
    return Stack(data_dir, log_path).start()


# -- raw HTTP ----------------------------------------------------------------


@dataclass
class RawResponse:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def error_code(self) -> str | None:
        """The error code as botocore derives it from `__type`."""
        try:
            body = self.json
        except ValueError:
            return None
        if not isinstance(body, dict) or "__type" not in body:
            return None
        code = body["__type"]
        code = code.rsplit("#", 1)[-1]
        return code.split(":", 1)[0]

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


def sign_headers(
    endpoint: str,
    body: bytes,
    headers: dict[str, str],
    *,
    account: str = "a",
    service: str = "kms",
    region: str = REGION,
    timestamp: dt.datetime | None = None,
) -> dict[str, str]:
    """SigV4-sign a POST of `body` to `<endpoint>/` with botocore's signer."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    acct = ACCOUNTS[account]
    req = AWSRequest(method="POST", url=endpoint + "/", data=body, headers=dict(headers))
    signer = SigV4Auth(Credentials(acct.access_key, acct.secret_key), service, region)
    if timestamp is None:
        signer.add_auth(req)
    else:
        naive = timestamp.astimezone(dt.timezone.utc).replace(tzinfo=None)
        with mock.patch("botocore.auth.get_current_datetime", return_value=naive):
            signer.add_auth(req)
    return dict(req.headers.items())


def raw_post(
    endpoint: str,
    body: bytes | str | dict,
    *,
    target: str | None,
    sign: bool = True,
    account: str = "a",
    service: str = "kms",
    content_type: str = JSON_1_1,
    timestamp: dt.datetime | None = None,
    timeout: float = 30,
) -> RawResponse:
    """POST `body` to the endpoint with plain http.client, optionally SigV4-signed
    (a valid signature over exactly these bytes)."""
    assert_loopback_endpoint(endpoint)
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    headers = {"Content-Type": content_type}
    if target is not None:
        headers["X-Amz-Target"] = target
    if sign:
        headers = sign_headers(endpoint, body, headers, account=account, service=service, timestamp=timestamp)
    parts = urlsplit(endpoint)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        try:
            conn.request("POST", "/", body=body, headers=headers)
        except (BrokenPipeError, ConnectionResetError):
            # The server may answer (e.g. 413) and stop reading before the whole
            # body is sent; its response is still readable.
            pass
        resp = conn.getresponse()
        data = resp.read()
        return RawResponse(resp.status, resp.headers, data)
    finally:
        conn.close()


# -- aws CLI -----------------------------------------------------------------


class AwsCli:
    """Runs the aws CLI (`python -m awscli`) against a stack with env credentials."""

    def __init__(self, endpoint: str, workdir: Path):
        assert_loopback_endpoint(endpoint)
        self.endpoint = endpoint
        self.workdir = Path(workdir)

    def env(self, account: str = "a") -> dict[str, str]:
        acct = ACCOUNTS[account]
        env = isolate_aws_env(dict(os.environ))
        env.update(
            AWS_ACCESS_KEY_ID=acct.access_key,
            AWS_SECRET_ACCESS_KEY=acct.secret_key,
            AWS_DEFAULT_REGION=REGION,
            AWS_MAX_ATTEMPTS="1",
            AWS_RETRY_MODE="standard",
            AWS_PAGER="",
        )
        return env

    def run(self, *args: str, account: str = "a", check: bool = True, timeout: float = 90) -> subprocess.CompletedProcess:
        cmd = [
            sys.executable,
            "-m",
            "awscli",
            "--endpoint-url",
            self.endpoint,
            "--region",
            REGION,
            "--output",
            "json",
            *args,
        ]
        proc = subprocess.run(
            cmd,
            cwd=self.workdir,
            env=self.env(account),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"aws {' '.join(args)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    def json(self, *args: str, account: str = "a") -> Any:
        out = self.run(*args, account=account).stdout
        return json.loads(out) if out.strip() else None

    def text(self, *args: str, account: str = "a") -> str:
        return self.run(*args, "--output", "text", account=account).stdout.strip()


# -- misc --------------------------------------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def key_arn(key_id: str, account: Account = ACCOUNT_A) -> str:
    return f"arn:aws:kms:{REGION}:{account.account_id}:key/{key_id}"


def alias_arn(alias_name: str, account: Account = ACCOUNT_A) -> str:
    return f"arn:aws:kms:{REGION}:{account.account_id}:{alias_name}"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def lookup_events(ct, attribute: tuple[str, str] | None = None, *, max_pages: int = 60, **kwargs) -> list[dict]:
    """All events of a LookupEvents query, following NextToken."""
    params = dict(kwargs)
    params.setdefault("MaxResults", 50)
    if attribute is not None:
        params["LookupAttributes"] = [{"AttributeKey": attribute[0], "AttributeValue": attribute[1]}]
    events: list[dict] = []
    for _ in range(max_pages):
        resp = ct.lookup_events(**params)
        events.extend(resp.get("Events", []))
        token = resp.get("NextToken")
        if not token:
            return events
        params["NextToken"] = token
    raise AssertionError(f"LookupEvents still had a NextToken after {max_pages} pages")


def wait_for_events(
    ct,
    attribute: tuple[str, str] | None,
    predicate: Callable[[list[dict]], bool],
    *,
    timeout: float = 10,
    **kwargs,
) -> list[dict]:
    """Poll LookupEvents until `predicate(events)` holds (records may be
    delivered asynchronously); returns the last events seen."""
    deadline = time.monotonic() + timeout
    while True:
        events = lookup_events(ct, attribute, **kwargs)
        if predicate(events):
            return events
        if time.monotonic() > deadline:
            return events
        time.sleep(0.2)


def event_json(event: dict) -> dict:
    return json.loads(event["CloudTrailEvent"])


def by_request_id(events: Iterable[dict], request_id: str) -> dict | None:
    for e in events:
        if event_json(e).get("requestID") == request_id:
            return e
    return None


@contextmanager
def client_error(code: str, status: int = 400):
    """Expect a botocore ClientError with this error code and HTTP status."""
    from botocore.exceptions import ClientError

    holder: dict[str, Any] = {}
    try:
        yield holder
    except ClientError as e:
        holder["error"] = e
        got = e.response["Error"]["Code"]
        got_status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        assert (got, got_status) == (code, status), (
            f"expected {code} / HTTP {status}, got {got} / HTTP {got_status}: {e.response['Error'].get('Message')}"
        )
    else:
        raise AssertionError(f"expected {code}, but the call succeeded")
