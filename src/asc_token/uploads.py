"""A build to App Store Connect through Apple's Build Uploads API (4.1+), from any runner.

``buildUploads`` -> ``buildUploadFiles`` -> its upload operations (parts sent by :mod:`operations` to
object storage, never with a credential) -> ``PATCH uploaded: true`` with the file's SHA-256 -> the
file's delivery state -> (``wait``) the build upload's state, then the build's ``processingState``.
Until the file is committed, a failure or an interrupt deletes the build upload, so a re-run with the
same build number is not refused as a duplicate.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Tuple
from urllib.parse import quote

from . import messages as text
from .assets import ASSET_KINDS, attributes, commit_document, file_digest, resource_id
from .errors import ApiError, InputError, UploadFailedError
from .explain import Asked, apple_errors, explain_api_reply, explain_api_unreachable, explain_reply
from .lifetimes import describe_duration
from .operations import DEFAULT_PARALLEL, check_plan, operations_in, send_options, send_parts
from .redact import quote_foreign
from .settings import parse_lifetime, read_bool
from .transport import NoAnswerError, Reply
from .urls import api_id, join_path

if TYPE_CHECKING:
    from .apis import Api
    from .bundles import ResolvedBuild
    from .caller import Caller
    from .records import InputReader
    from .world import Io

BUILD_UPLOAD_FILES = ASSET_KINDS["/v1/buildUploadFiles"]  # its commit takes the SHA-256
UPLOAD_SETTINGS = (
    "file",
    "bundle-id",
    "app-id",
    "version",
    "build-number",
    "platform",
    "wait",
    "wait-timeout",
    "parallel",
)
DEFAULT_WAIT_TIMEOUT = 60 * 60
MAX_PARALLEL = 16
# Polling: every 10 s for the first two minutes, then every 30 s; the state said when it changes
# and at least once a minute. The delivery of a committed file is polled briefly.
QUICK_POLL, SLOW_POLL, QUICK_PHASE, STILL_SAYS = 10.0, 30.0, 120.0, 60.0
DELIVERY_POLL, DELIVERY_SECONDS = 2.0, 120.0
CLEANUP_SECONDS = 5.0  # the runner kills a step soon after SIGINT
UPLOAD_GRANT = "the Developer, App Manager or Admin role (Users and Access > Integrations)"  # in a 403
# The states Apple's document lists; any other answer is shown through quote_foreign, never compared as one.
UPLOAD_STATES = ("AWAITING_UPLOAD", "PROCESSING", "COMPLETE", "FAILED")
DELIVERY_STATES = ("AWAITING_UPLOAD", "UPLOAD_COMPLETE", "COMPLETE", "FAILED")
PROCESSING_STATES = ("PROCESSING", "VALID", "INVALID", "FAILED")
# No answer, though the request may have reached Apple (refused, dns, tls and proxy-auth: it did not).
ANSWER_LOST = ("timeout", "reset", "decode")
DUPLICATE_CODE = "ENTITY_ERROR.ATTRIBUTE.INVALID.DUPLICATE"  # what peers see; Apple's document lists no 409 code


@dataclass(frozen=True)
class UploadRequest:
    """What the user asked for, checked before anything is created."""

    build: ResolvedBuild
    app_id: Optional[str]
    wait: bool = False
    wait_timeout: int = DEFAULT_WAIT_TIMEOUT
    parallel: int = DEFAULT_PARALLEL
    notes: Tuple[str, ...] = ()  # a flag that disagrees with the file: both values, for the log


@dataclass
class UploadState:
    """What exists at Apple so far: printed on stdout (on failure too) once a build upload exists."""

    build_upload_id: str = ""
    upload_state: str = ""
    file_id: str = ""
    delivery_state: str = ""
    build_id: str = ""
    processing_state: str = ""
    committed: bool = False
    deleted: bool = False
    warnings: List[str] = field(default_factory=list)

    def document(self) -> Dict[str, Any]:
        shown: Dict[str, Any] = {
            "buildUpload": {"id": self.build_upload_id, "state": self.upload_state or None, "deleted": self.deleted},
            "buildUploadFile": {"id": self.file_id or None, "assetDeliveryState": self.delivery_state or None},
        }
        shown["build"] = {"id": self.build_id or None, "processingState": self.processing_state or None}
        return shown


def read_upload_request(inputs: InputReader, api: Api) -> UploadRequest:
    """The upload's settings from flags or action inputs; :class:`InputError` (exit 2) before any request."""
    from .bundles import read_build_file, resolve_build

    if not api.build_uploads:
        raise InputError(text.UPLOAD_ENTERPRISE.format(api=inputs.label("api"), service=api.service))
    path = inputs.get("file").strip()
    if not path:
        raise InputError(text.UPLOAD_NO_FILE.format(file=inputs.label("file")))
    app_id = inputs.get("app-id").strip() or None
    if app_id is not None and not (app_id.isascii() and app_id.isdigit()):  # str.isdigit takes "²" and "١٢٣"
        raise InputError(text.UPLOAD_BAD_APP_ID.format(app_id=inputs.label("app-id")))
    build, notes = resolve_build(
        read_build_file(path),
        bundle_id=inputs.get("bundle-id").strip() or None,
        version=inputs.get("version").strip() or None,
        build_number=inputs.get("build-number").strip() or None,
        platform=inputs.get("platform").strip() or None,
        app_id=app_id,
    )
    raw_timeout = inputs.get("wait-timeout").strip()
    timeout = parse_lifetime(raw_timeout) if raw_timeout else DEFAULT_WAIT_TIMEOUT
    if not timeout:
        raise InputError(text.UPLOAD_BAD_TIMEOUT.format(setting=inputs.label("wait-timeout")))
    raw_parallel = inputs.get("parallel").strip() or str(DEFAULT_PARALLEL)
    if not (raw_parallel.isascii() and raw_parallel.isdigit()) or not 1 <= int(raw_parallel) <= MAX_PARALLEL:
        raise InputError(text.UPLOAD_BAD_PARALLEL.format(setting=inputs.label("parallel"), most=MAX_PARALLEL))
    wait = read_bool(inputs, "wait", default=False)
    return UploadRequest(build, app_id, wait, timeout, int(raw_parallel), tuple(notes))


class Apple:
    """The upload's requests to App Store Connect, each refusal explained."""

    def __init__(self, caller: Caller) -> None:
        self.caller = caller

    def url(self, path: str) -> str:
        return join_path(path, self.caller.credentials.api_url)

    def send(self, method: str, path: str, body: Optional[Mapping[str, Any]] = None, *, purpose: str) -> Reply:
        try:
            return self.transfer(method, path, body)
        except NoAnswerError as error:
            raise self.unreachable(error, method, path, purpose) from None

    def transfer(self, method: str, path: str, body: Optional[Mapping[str, Any]] = None) -> Reply:
        """The answer as it came, or :class:`NoAnswerError`."""
        data = None if body is None else json.dumps(body).encode()
        transport = self.caller.transport
        if method == "POST":  # sent again after a 5xx or no answer, it could create a second build upload (a 409)
            policy = dataclasses.replace(transport.policy, resend_when_uncertain=False)
            transport = dataclasses.replace(transport, policy=policy)
        return transport.send(method, self.url(path), self.caller.tokens, body=data)

    def asked(self, path: str, purpose: str) -> Asked:
        way_out = "use a key that has it"  # a 403's advice (explain.FORBIDDEN_ROLE), with UPLOAD_GRANT
        return Asked.about(
            self.url(path), self.caller.credentials, purpose=purpose, grant=UPLOAD_GRANT, way_out=way_out
        )

    def unreachable(self, error: NoAnswerError, method: str, path: str, purpose: str) -> ApiError:
        return explain_api_unreachable(
            error.kind, self.asked(path, purpose), method, self.caller.naming, error.attempts
        )

    def document(self, method: str, path: str, body: Optional[Mapping[str, Any]] = None, *, purpose: str) -> Any:
        """The answer's JSON document, or the explained refusal."""
        reply = self.send(method, path, body, purpose=purpose)
        if not 200 <= reply.status < 300:
            raise self.refusal(reply, method, path, purpose)
        return reply.json

    def refusal(self, reply: Reply, method: str, path: str, purpose: str) -> ApiError:
        asked = self.asked(path, purpose)
        if reply.status == 403 and apple_errors(reply):  # as the verification's 403: the roles, or the agreements
            return explain_reply(reply, asked, self.caller.naming, self.caller.clock)
        return explain_api_reply(reply, asked, method, self.caller.naming, self.caller.clock)


def find_app(apple: Apple, bundle_id: str) -> str:
    """The app's ID for a bundle ID (one request), or an error naming --bundle-id and --app-id."""
    path = f"/v1/apps?filter[bundleId]={quote(bundle_id, safe='')}&fields[apps]=bundleId&limit=2"
    document = apple.document("GET", path, purpose="list apps")
    data = document.get("data") if isinstance(document, dict) else None
    found = [
        item
        for item in (data if isinstance(data, list) else [])
        if isinstance(item, dict) and attributes({"data": item}).get("bundleId") == bundle_id
    ]
    if not found:
        raise UploadFailedError(text.UPLOAD_NO_APP.format(bundle_id=quote_foreign(bundle_id, 200)))
    return api_id(found[0].get("id"), "the app's id")


@dataclass(frozen=True)
class Waiting:
    """The clocks and the log of a wait; injected (tests do not wait)."""

    monotonic: Callable[[], float]
    sleep: Callable[[float], None]
    log: Callable[[str], None]


def run_upload(request: UploadRequest, caller: Caller, io: Io, state: UploadState) -> None:
    """Create, send, commit, and (``request.wait``) wait for processing; ``state`` says what exists."""
    apple, build, file, log = Apple(caller), request.build, request.build.file, caller.log
    waiting = Waiting(io.monotonic, io.sleep, log)
    app_id = request.app_id or find_app(apple, build.bundle_id or "")
    created = _create_upload(apple, request, app_id)
    state.build_upload_id, state.upload_state = (
        resource_id(created, "the build upload's id"),
        state_of(attributes(created)) or "",
    )
    try:
        facts = {"version": quote_foreign(build.version, 50), "build": quote_foreign(build.build_number, 50)}
        facts.update(
            id=state.build_upload_id, file=quote_foreign(file.file_name, 120), platform=build.platform, app=app_id
        )
        log(text.UPLOAD_CREATED.format(size=file.size, **facts))
        reserved = apple.document("POST", "/v1/buildUploadFiles", _file_body(request, state), purpose="upload builds")
        state.file_id = resource_id(reserved, "the build upload file's id")
        plan = check_plan(operations_in(reserved), file.size)
        digest = file_digest(file.path, "SHA_256")  # Apple's SHA_256 for builds, as the issue asks
        refresh = lambda: operations_in(  # noqa: E731 - operations past their expiration, asked for once
            apple.document("GET", f"/v1/buildUploadFiles/{state.file_id}", purpose="upload builds")
        )
        send_parts(file.path, plan, send_options(io, request.parallel), refresh=refresh)
        _commit(apple, state, digest)
    except BaseException:  # an error or an interrupt before the commit: nothing half-done is left
        if not state.committed:
            delete_upload(caller, io, state)
        raise
    try:
        _wait_for_delivery(apple, waiting, state, processing_next=request.wait)
    except UploadFailedError:
        if state.delivery_state == "FAILED":  # Apple took nothing: a re-run must not be refused as a duplicate
            delete_upload(caller, io, state)
        raise
    if request.wait:
        _wait_for_processing(apple, request, waiting, state)


def _commit(apple: Apple, state: UploadState, digest: Optional[str]) -> None:
    """``uploaded: true`` with the file's SHA-256; ``state.committed`` once Apple has it."""
    path = f"/v1/buildUploadFiles/{state.file_id}"
    body = commit_document(BUILD_UPLOAD_FILES.path, state.file_id, sha256_hex=digest)
    reply = apple.send("PATCH", path, body, purpose="upload builds")
    if 200 <= reply.status < 300:
        found = attributes(reply.json)
    elif reply.status == 409 and reply.attempts > 1:
        # An earlier attempt may have committed it before its answer was lost: the file's state says.
        found = attributes(apple.document("GET", path, purpose="upload builds"))
        if _delivery_of(found) in (None, "AWAITING_UPLOAD"):
            raise apple.refusal(reply, "PATCH", path, "upload builds")
    else:
        raise apple.refusal(reply, "PATCH", path, "upload builds")
    state.committed = True
    state.delivery_state = _delivery_of(found) or ""


def _create_upload(apple: Apple, request: UploadRequest, app_id: str) -> Any:
    build = request.build
    body = {
        "data": {
            "type": "buildUploads",
            "attributes": {
                "cfBundleShortVersionString": build.version,
                "cfBundleVersion": build.build_number,
                "platform": build.platform,
            },
            "relationships": {"app": {"data": {"type": "apps", "id": app_id}}},
        }
    }
    try:
        reply = apple.transfer("POST", "/v1/buildUploads", body)
    except NoAnswerError as error:
        if error.kind in ANSWER_LOST:
            _may_exist(apple, request, app_id, "got no answer")
        raise apple.unreachable(error, "POST", "/v1/buildUploads", "upload builds") from None
    except KeyboardInterrupt:  # SIGINT, SIGTERM: the request may have reached Apple
        _may_exist(apple, request, app_id, "was interrupted")
        raise
    if reply.status >= 500:  # Apple may have created it before it failed
        _may_exist(apple, request, app_id, f"was answered {reply.status}")
    codes = [str(error.get("code") or "") for error in apple_errors(reply)]
    # Apple answers 409 to every entity error (a bad attribute too): only the duplicate's code is a duplicate.
    duplicate = any(code.startswith(DUPLICATE_CODE) for code in codes) or (reply.status == 409 and not any(codes))
    if reply.status >= 400 and duplicate:
        raise UploadFailedError(
            text.UPLOAD_DUPLICATE.format(
                version=quote_foreign(build.version or "", 50),
                build=quote_foreign(build.build_number or "", 50),
                platform=build.platform,
                said=_apple_words(reply),
                listing=_listing(request, app_id),
            ),
            title="Build number already used",
        )
    if not 200 <= reply.status < 300:
        raise apple.refusal(reply, "POST", "/v1/buildUploads", "upload builds")
    return reply.json


def _may_exist(apple: Apple, request: UploadRequest, app_id: str, what: str) -> None:
    """A build upload Apple may have created, whose ID never arrived: how to find and delete it."""
    apple.caller.log(text.UPLOAD_MAY_EXIST.format(what=what, listing=_listing(request, app_id)))


def _listing(request: UploadRequest, app_id: str) -> str:
    """The app's build uploads of this version, build number and platform (an asc-token api PATH). Apple
    reads a filter's commas as between values, so a value with one is left out (the list is longer); a
    value from bytes that are not UTF-8 (surrogates) is escaped as it came, never an internal error."""
    build = request.build
    filters = (
        ("cfBundleShortVersionString", build.version or ""),
        ("cfBundleVersion", build.build_number or ""),
        ("platform", build.platform),
    )
    query = "&".join(
        f"filter[{name}]={quote(value, safe='', errors='surrogatepass')}" for name, value in filters if "," not in value
    )
    return f"/v1/apps/{app_id}/buildUploads?{query}"


def _file_body(request: UploadRequest, state: UploadState) -> Dict[str, Any]:
    file = request.build.file
    return {
        "data": {
            "type": "buildUploadFiles",
            "attributes": {"assetType": "ASSET", "fileName": file.file_name, "fileSize": file.size, "uti": file.uti},
            "relationships": {"buildUpload": {"data": {"type": "buildUploads", "id": state.build_upload_id}}},
        }
    }


def _apple_words(reply: Reply) -> str:
    errors = apple_errors(reply)
    if not errors:
        return ""
    first = errors[0]
    said = " ".join(str(first.get(part, "")) for part in ("code", "detail") if first.get(part))
    return text.UPLOAD_APPLE_SAID.format(said=quote_foreign(said, 300)) if said else ""


def delete_upload(caller: Caller, io: Io, state: UploadState) -> None:
    """Best effort, within a few seconds: the build upload of a failed or interrupted upload."""
    if not state.build_upload_id or state.deleted:
        return
    policy = dataclasses.replace(io.policy, total_seconds=CLEANUP_SECONDS, max_attempts=2)
    transport = dataclasses.replace(caller.transport, policy=policy)
    url = Apple(caller).url(f"/v1/buildUploads/{state.build_upload_id}")
    try:
        reply: Optional[Reply] = transport.send("DELETE", url, caller.tokens)
    except Exception:  # noqa: BLE001 - best effort (NoAnswerError too): the reason is in the log line below
        reply = None
    if reply is not None and (200 <= reply.status < 300 or reply.status == 404):
        state.deleted = True
        caller.log(text.UPLOAD_DELETED.format(id=state.build_upload_id))
    else:
        answer = f"answered {reply.status}" if reply is not None else "did not answer"
        caller.log(text.UPLOAD_NOT_DELETED.format(id=state.build_upload_id, answer=answer))


def known_state(value: Any, known: Tuple[str, ...]) -> Optional[str]:
    """Apple's state as one of ``known``, any other text made safe for a log (quote_foreign), or None."""
    if not isinstance(value, str) or not value:
        return None
    return value if value in known else quote_foreign(value, 60)


def _holder(found: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """One of Apple's state objects (a build upload's ``state``, a file's ``assetDeliveryState``), or {}."""
    holder = found.get(name)
    return holder if isinstance(holder, dict) else {}


def state_of(found: Mapping[str, Any]) -> Optional[str]:
    """A build upload's ``state.state``."""
    return known_state(_holder(found, "state").get("state"), UPLOAD_STATES)


def read_build_upload(apple: Apple, state: UploadState) -> Any:
    """The build upload as Apple has it now; ``state.upload_state`` follows it."""
    document = apple.document("GET", f"/v1/buildUploads/{state.build_upload_id}", purpose="upload builds")
    state.upload_state = state_of(attributes(document)) or state.upload_state
    return document


def _delivery_of(found: Mapping[str, Any]) -> Optional[str]:
    return known_state(_holder(found, "assetDeliveryState").get("state"), DELIVERY_STATES)


def _details(items: Any) -> List[str]:
    """Apple's state errors or warnings, each "code: description", made safe for a log."""
    found = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            code, description = str(item.get("code", "") or ""), str(item.get("description", "") or "")
            found.append(quote_foreign(": ".join(part for part in (code, description) if part), 500))
    return found


def _wait_for_delivery(apple: Apple, waiting: Waiting, state: UploadState, *, processing_next: bool) -> None:
    """The committed file's delivery: COMPLETE, else exit 1: FAILED with Apple's reasons, or still pending
    after DELIVERY_SECONDS (unless the wait for processing, bounded by --wait-timeout, follows)."""
    started, problems = waiting.monotonic(), []
    while state.delivery_state not in ("COMPLETE", "FAILED"):
        if waiting.monotonic() - started > DELIVERY_SECONDS:
            facts = {"waited": describe_duration(DELIVERY_SECONDS), "state": state.delivery_state or "unknown"}
            if processing_next:
                waiting.log(text.UPLOAD_DELIVERY_SLOW.format(**facts))
                return
            pending = text.UPLOAD_DELIVERY_PENDING.format(id=state.file_id, **facts)
            raise UploadFailedError(pending, title="Delivery not finished")
        waiting.sleep(DELIVERY_POLL)
        found = attributes(apple.document("GET", f"/v1/buildUploadFiles/{state.file_id}", purpose="upload builds"))
        state.delivery_state = _delivery_of(found) or state.delivery_state
        problems = _details(_holder(found, "assetDeliveryState").get("errors"))
    if state.delivery_state == "FAILED":  # the commit's own answer may say so already
        raise UploadFailedError(
            text.UPLOAD_DELIVERY_FAILED.format(id=state.file_id, reasons="; ".join(problems) or "no reason given"),
            title="Upload failed",
        )
    waiting.log(text.UPLOAD_FILE_DELIVERED.format(state=state.delivery_state))


def _wait_for_processing(apple: Apple, request: UploadRequest, waiting: Waiting, state: UploadState) -> None:
    """The build upload's state, then the build's processingState, until VALID or the wait runs out."""
    started = waiting.monotonic()
    said_at, said = started, ""
    while True:
        document = read_build_upload(apple, state)
        found = attributes(document)
        holder = _holder(found, "state")
        for warning in _details(holder.get("warnings")):
            if warning not in state.warnings:
                state.warnings.append(warning)
                waiting.log(text.UPLOAD_APPLE_WARNING.format(warning=warning))
        if state.upload_state == "FAILED":
            reasons = _details(holder.get("errors"))
            raise UploadFailedError(
                text.UPLOAD_PROCESSING_FAILED.format(
                    id=state.build_upload_id,
                    reasons="; ".join(reasons) or "no reason given",
                    hint=_duplicate_hint(reasons),
                ),
                title="Processing failed",
            )
        if state.upload_state == "COMPLETE" and not state.build_id:
            state.build_id = _build_of(document)
        if state.build_id:
            build = attributes(apple.document("GET", f"/v1/builds/{state.build_id}", purpose="read builds"))
            state.processing_state = (
                known_state(build.get("processingState"), PROCESSING_STATES) or state.processing_state
            )
            if state.processing_state == "VALID":
                waiting.log(text.UPLOAD_BUILD_VALID.format(build=state.build_id))
                return
            if state.processing_state in ("INVALID", "FAILED"):
                raise UploadFailedError(
                    text.UPLOAD_BUILD_INVALID.format(build=state.build_id, state=state.processing_state),
                    title="Processing failed",
                )
        now = waiting.monotonic()
        current = f"{state.upload_state}/{state.processing_state}"
        if current != said or now - said_at >= STILL_SAYS:
            waiting.log(
                f"Processing: build upload {state.upload_state or 'unknown'}"
                + (f", build {state.processing_state or 'unknown'}" if state.build_id else "")
                + f" ({describe_duration(now - started)} so far)."
            )
            said, said_at = current, now
        interval = QUICK_POLL if now - started < QUICK_PHASE else SLOW_POLL
        if now + interval - started > request.wait_timeout:
            raise UploadFailedError(
                text.UPLOAD_WAIT_TIMEOUT.format(
                    waited=describe_duration(request.wait_timeout),
                    id=state.build_upload_id,
                    state=current,
                    build=state.build_id or "not yet known",
                ),
                title="Processing not finished",
            )
        waiting.sleep(interval)


def _build_of(document: Any) -> str:
    """The build a completed build upload made (its `build` relationship)."""
    data = document.get("data") if isinstance(document, dict) else None
    relation = data.get("relationships", {}).get("build", {}) if isinstance(data, dict) else {}
    linked = relation.get("data") if isinstance(relation, dict) else None
    return api_id(linked.get("id"), "the build's id") if isinstance(linked, dict) else ""


def _duplicate_hint(reasons: List[str]) -> str:
    """Apple's 90189 (and its kin): the build number was used already; say what to raise."""
    return text.UPLOAD_DUPLICATE_HINT if any(reason.startswith("90189") for reason in reasons) else ""
