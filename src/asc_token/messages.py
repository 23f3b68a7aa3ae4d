"""The long explanations, kept together as templates: code picks one by cause and fills it in.

Placeholders name what fills them: ``{service}`` is who answered (apis.Api.service), settings
come as the user spells them (``{key_id}`` is "`key-id`" or "ASC_KEY_ID"), and every text from a
server arrives already through redact.quote_foreign.
"""

from __future__ import annotations

STATUS_PAGE = "https://developer.apple.com/system-status/"

# --- 401 ---------------------------------------------------------------------------------------
UNAUTHORIZED = (
    "{service} answered 401 {code}{tried}: it did not accept the credentials; {headline} "
    "(likely causes below, most likely first)."
)
UNAUTHORIZED_HEADLINE_TEAM = "most often {issuer_id} is not the issuer of key {key}"
UNAUTHORIZED_HEADLINE_INDIVIDUAL = "most often {key_id} does not match the private key, or it is a team key"
CAUSE_WRONG_ISSUER = (
    "{issuer_id} is not the issuer of this key (copy the Issuer ID shown above the team keys list in "
    "App Store Connect > Users and Access > Integrations)"
)
UNAUTHORIZED_HEADLINE_KEY_FILE = "most often the key file is not key {key}: its name says key {file_key_id}"
CAUSE_KEY_FILE_NAME = (
    "{key_file} is named for key {file_key_id}, not {key}: the key ID must be the one in the file's name "
    "(set {set_key_id} if the file holds that key, or give the file of key {key})"
)
CAUSE_WRONG_KEY_ID = "{key_id} does not match the private key (the ID is in the file name AuthKey_<KEYID>.p8)"
CAUSE_REVOKED = "the key was revoked in App Store Connect (create a new key and update the secrets)"
CAUSE_INDIVIDUAL_AS_TEAM = "this is an individual key but {key_type} is team (set {set_individual})"
CAUSE_TEAM_AS_INDIVIDUAL = (
    "this is a team key but {key_type} is individual (set {set_team} and {issuer_id} to the Issuer ID)"
)
CAUSE_CLOCK = "the runner's clock is off{measured}"
UNAUTHORIZED_CAUSES_TEAM = (
    CAUSE_WRONG_ISSUER,
    CAUSE_WRONG_KEY_ID,
    CAUSE_REVOKED,
    CAUSE_INDIVIDUAL_AS_TEAM,
    CAUSE_CLOCK,
)
UNAUTHORIZED_CAUSES_INDIVIDUAL = (CAUSE_WRONG_KEY_ID, CAUSE_TEAM_AS_INDIVIDUAL, CAUSE_REVOKED, CAUSE_CLOCK)
UNAUTHORIZED_HEADLINE_GIVEN = "most often the token in ASC_TOKEN has expired, and with no key none can be signed afresh"
UNAUTHORIZED_CAUSES_GIVEN = (
    "the token in ASC_TOKEN expired: give a new one, or set the key (ASC_PRIVATE_KEY_PATH) to sign each request's",
    "the token was cut or changed when copied, or its key was revoked: give the whole token again, or set the key",
    CAUSE_CLOCK,
)
CLOCK_SKEW = (
    "{service} answered 401 {code}: the runner's clock is {skew} {direction} {service}'s, so the token "
    "looks expired or not yet valid; fix the runner's time (enable NTP) and re-run."
)
CLOCK_SKEW_DETAILS = (
    "{service}'s Date header and the runner's clock differ by {seconds} seconds. Tokens live at most 20 "
    "minutes, so Apple rejects them when the clocks disagree by more than a minute or so.\nApple said: {said}"
)

# --- 403 ---------------------------------------------------------------------------------------
AGREEMENTS = (
    "{service} answered 403 {code}: the Account Holder must accept the latest agreement in App Store "
    "Connect > Business; no change to the key or the settings will help."
)
FORBIDDEN_ROLE = (
    "{service} answered 403 {code}: the key is valid, but its role may not {purpose}{needed}; give key "
    "{key} {grant}, or {way_out}."
)
FORBIDDEN_REQUEST = (
    "{service} answered 403 {code} to {asked}: the key is valid, but its role may not make this request; "
    "give the key in {key_id} a role that may (the endpoint's documentation lists them), or use another key."
)

# --- other answers -----------------------------------------------------------------------------
RATE_LIMITED = (
    "{service} answered 429 {code}{tried}: this key used its hourly request quota; wait for the hour to "
    "roll over, or use another key for this pipeline."
)
SERVER_TROUBLE = (
    "{service} answered {status}{tried}: the service is having trouble, not your credentials; re-run the "
    "job later and check " + STATUS_PAGE + "."
)
OTHER_STATUS = "{service} answered {status} {code} for {url}: check the request and {url_setting}."
NOT_FOUND = (
    "{service} answered 404 {code} to {asked}: there is no such path or resource; check PATH (the path, "
    "the resource ID, and that this key's team can see the resource) against Apple's API reference."
)
REQUEST_REFUSED = (
    "{service} answered {status} {code} to {asked}: {service} refused the request as sent; fix what it "
    "points at{pointed}, as described below, and send it again."
)

# --- something else answered -------------------------------------------------------------------
REDIRECTED = (
    "{url} answered with a redirect ({status}), which {service} never does: a proxy, captive portal or "
    "wrong {url_setting} is in the way; check {url_setting} and the runner's proxy settings."
)
PROXY_PAGE = (
    "Something between the runner and {service} answered {status}{tried} with {body}, not {service}'s "
    "JSON: a proxy, gateway or firewall (or a wrong {url_setting}) answered for it; check the runner's "
    "proxy settings, then re-run."
)

# --- no answer ---------------------------------------------------------------------------------
UNREACHABLE = "Could not reach {service} at {url}: {what}{tried}; {fix}."
UNREACHABLE_KINDS = {  # kind: (what happened, the fix)
    "url": ("the URL cannot be used (a malformed host name or port)", "correct {url_setting}"),
    "refused": ("the connection was refused", "check {url_setting} and any proxy; nothing is listening there"),
    "dns": ("the host name could not be resolved (DNS)", "check {url_setting} and the runner's DNS or proxy settings"),
    "timeout": (
        "the request timed out",
        "{service} or a proxy did not answer in time; re-run the job, and check " + STATUS_PAGE,
    ),
    "reset": ("the connection was reset", "a proxy or firewall may be cutting the connection; re-run the job"),
    "proxy-auth": (
        "the proxy in HTTPS_PROXY answered 407 Proxy Authentication Required",
        "put the proxy's user name and password in HTTPS_PROXY (from a secret), as http://USER:PASSWORD@HOST:PORT",
    ),
    "tls": (
        "the TLS handshake failed",
        "a proxy may be intercepting TLS; set REQUESTS_CA_BUNDLE to its CA certificate",
    ),
}
# An answer came, but its body could not be read: said as the server's (or a proxy's) fault, not the network's.
BAD_ANSWER = "{service} at {url} sent an answer that could not be read: {what}{tried}; {fix}."
BAD_ANSWER_KINDS = {  # kind: (what happened, the fix)
    "decode": (
        "its body is not in the Content-Encoding (such as gzip) its headers name",
        "a proxy or gateway between the runner and {service} may be rewriting answers; check the runner's "
        "proxy settings, then re-run",
    ),
}
UNREACHABLE_CHECK_DETAILS = (
    "The token itself was minted; only the check that it works could not run. Set {set_no_verify} to "
    "skip the check on runners that cannot reach {host}."
)
UNREACHABLE_GET = "Nothing was printed; run the command again when {service} can be reached."
UNREACHABLE_WRITE = (
    "No answer came back, so {service} may or may not have carried out the {method}: check the resource "
    "before sending it again (a second POST can create a second resource)."
)

# --- lifetimes (Apple's rule is in lifetimes.py) -----------------------------------------------
_LONGER_THAN_SHORT = "{asked}, longer than 20 minutes (1 to 1200 seconds), which Apple accepts only "
LIFETIME_REFUSALS = {  # by lifetimes.Refusal.rule
    "range": (
        "{asked}, longer than the six months Apple accepts for any token: set it to 180d ({longest} seconds) or less."
    ),
    "api": (
        "{asked}, but the {service} ({set_api}) accepts no token that lives longer than 20 minutes: set "
        "{expires_in} to 1 to 1200 seconds."
    ),
    "no-scope": _LONGER_THAN_SHORT
    + (
        "for a token with a {scope} of GET requests on resources that allow long-lived tokens: set {scope} "
        "(like GET /v1/ciProducts), {shorten}."
    ),
    "not-get": _LONGER_THAN_SHORT
    + ("when every {scope} entry is a GET, and {entry} is not: remove that entry from {scope}, {shorten}."),
    "resource": _LONGER_THAN_SHORT
    + (
        "for resources that allow long-lived tokens ({names}), and {scope} entry {entry} reads {resource}, "
        "which does not: remove that entry from {scope}, {shorten}."
    ),
}
LIFETIME_DETAILS = (
    "Apple accepts tokens of up to six months only with a scope of GET requests on these resources "
    '(Apple, "Generating Tokens for API Requests" > "Determine the Appropriate Token Lifetime"):\n{resources}'
)

# --- asc-token upload --------------------------------------------------------------------------
UPLOAD_ENTERPRISE = (
    "{api} is enterprise, and the {service} has no build uploads: upload with an App Store "
    "Connect key (unset {api}); in-house apps are distributed without App Store Connect."
)
UPLOAD_NO_FILE = "{file} is empty: give the .ipa or .pkg to upload."
UPLOAD_BAD_APP_ID = "{app_id} must be the app's numeric Apple ID (App Store Connect > App Information > Apple ID)."
UPLOAD_BAD_TIMEOUT = "{setting} must be a duration such as 3600, 90s, 30m or 2h (at least 1s)."
UPLOAD_BAD_PARALLEL = "{setting} must be a whole number of parts sent at once, from 1 to {most}."
UPLOAD_NO_APP = (
    "No app with bundle ID {bundle_id} is visible to this key: check --bundle-id (or the file's "
    "CFBundleIdentifier), create the app in App Store Connect first, or give --app-id."
)
UPLOAD_DUPLICATE = (
    "App Store Connect already has build {build} of version {version} ({platform}) for this app{said}: "
    "raise CFBundleVersion (or --build-number) and upload again; build numbers are never reused. Only if an "
    "earlier upload of it never sent its file (state AWAITING_UPLOAD in asc-token api '{listing}') may that "
    "build upload be deleted instead, with asc-token api -X DELETE /v1/buildUploads/ID."
)
UPLOAD_DUPLICATE_HINT = (
    " Code 90189 means the build number was used already: raise CFBundleVersion (or --build-number) and upload again."
)
UNUSABLE_ID = (
    "App Store Connect answered {said} as {what}, which is not an ID (letters, digits and . _ ~ - only), "
    "so no request was sent with it."
)
UPLOAD_CREATED = (
    "Build upload {id} created: {file} ({size} bytes), version {version} build {build}, {platform}, app {app}."
)
UPLOAD_FILE_DELIVERED = "File delivered: {state}."
UPLOAD_APPLE_WARNING = "warning: Apple: {warning}"
UPLOAD_BUILD_VALID = "Build {build} processed: VALID."
UPLOAD_APPLE_SAID = " (Apple said: {said})"
ASSET_NOT_COMMITTED = (
    "The {type} {id} was reserved but not committed: look at it with asc-token api {path}, and delete it "
    "with asc-token api -X DELETE {path} (where App Store Connect allows that) before reserving again."
)
ASSET_RESERVED = "Reserved {type} {id} for {size} bytes."
ASSET_COMMITTED = "Committed {type} {id}; App Store Connect processes it next."
UPLOAD_MAY_EXIST = (
    "The request that creates the build upload {what}, so App Store Connect may have created one whose ID "
    "this step never got, and cannot delete: if a re-run is refused as a duplicate, find it with "
    "asc-token api '{listing}' and delete it with asc-token api -X DELETE /v1/buildUploads/ID."
)
UPLOAD_DELETED = "Deleted build upload {id}, so a re-run with the same build number is not refused as a duplicate."
UPLOAD_NOT_DELETED = (
    "Could not delete build upload {id} (App Store Connect {answer}): a re-run with the same build "
    "number may be refused as a duplicate; delete it with asc-token api -X DELETE /v1/buildUploads/{id}."
)
UPLOAD_DELIVERY_FAILED = (
    "App Store Connect could not take the uploaded file {id}: {reasons}. Nothing was processed; fix the "
    "file and upload again."
)
UPLOAD_DELIVERY_PENDING = (
    "The file was committed, but after {waited} its delivery is still {state}: look later with asc-token api "
    "/v1/buildUploadFiles/{id}, and upload again with a new build number if it ends FAILED."
)
UPLOAD_DELIVERY_SLOW = "The file's delivery is still {state} after {waited}; the wait for processing goes on."
UPLOAD_PROCESSING_FAILED = (
    "App Store Connect could not process build upload {id}: {reasons}.{hint} The details: asc-token api "
    "/v1/buildUploads/{id}."
)
UPLOAD_BUILD_INVALID = (
    "App Store Connect processed build {build} as {state}: it cannot be tested or submitted; the reasons "
    "are in App Store Connect > TestFlight and in Apple's email, and in asc-token api /v1/builds/{build}."
)
UPLOAD_WAIT_TIMEOUT = (
    "The build was uploaded, but Apple had not finished processing it after {waited} (state {state}, "
    "build {build}): raise --wait-timeout, or look later with asc-token api /v1/buildUploads/{id}."
)

# --- upload operations (operations.py); {part} is "part 3 (bytes 0-99)", {url} is scheme://host/path ----
PLAN_MALFORMED = (
    "App Store Connect's upload operation {item} {problem}, so nothing was sent; re-run the upload, and if "
    "it happens again, report it to Apple."
)
PLAN_GAP = (
    "App Store Connect's upload operations send no part with bytes {start}-{end} of the file ({size} bytes), "
    "so nothing was sent: the file changed since it was reserved, or the reservation was for another size; "
    "re-run the upload with the file left unchanged."
)
PLAN_OVERLAP = (
    "App Store Connect's upload operations {part} and {other} both send bytes {start}-{end}, so nothing was "
    "sent (the assembled file would be wrong); re-run the upload, and if it happens again, report it to Apple."
)
PLAN_PAST_END = (
    "App Store Connect's upload {part} asks for bytes past the end of the file ({size} bytes), so nothing "
    "was sent: the file changed since it was reserved; re-run the upload with the file left unchanged."
)
PLAN_DESTINATION = (
    "App Store Connect's upload {part} would send the file to {url}, which {problem}, so nothing was sent: "
    "a file goes only over https (plain http only to this machine); check api-url and any proxy that "
    "rewrites answers, then re-run."
)
PART_REFUSED = (
    "The object storage at {url} answered {status}{said} to {part} of {file}, a refusal another attempt "
    "would not change; re-run the upload (it gets fresh links), and if it happens again, check for a proxy "
    "that rewrites requests."
)
PART_SERVER = (
    "The object storage at {url} answered {status} to {part} of {file} on all {attempts} attempts: it is "
    "having trouble, not your file or credentials; re-run the upload later and check " + STATUS_PAGE + "."
)
PART_UNREACHABLE = "Could not send {part} of {file} to {url}: {what}{tried}; {fix}."
PART_UNREACHABLE_KINDS = {  # kind (transport.classify_network_error): (what happened, the fix)
    "reset": ("the connection was reset", "a proxy or firewall may be cutting long uploads; re-run the upload"),
    "timeout": (
        "no answer came in time",
        "the storage or a proxy is slow; re-run the upload, with fewer parallel parts",
    ),
    "refused": ("the connection was refused", "check the runner's network and HTTPS_PROXY, then re-run the upload"),
    "dns": (
        "the host name could not be resolved (DNS)",
        "check the runner's DNS and HTTPS_PROXY, then re-run the upload",
    ),
    "tls": (
        "the TLS handshake failed",
        "a proxy may be intercepting TLS: set REQUESTS_CA_BUNDLE to its CA certificate and re-run the upload",
    ),
    "proxy-auth": (
        "the proxy in HTTPS_PROXY answered 407",
        "put the proxy's user name and password in HTTPS_PROXY and re-run the upload",
    ),
    "decode": ("its answer could not be read", "a proxy may be rewriting answers; check HTTPS_PROXY, then re-run"),
    "url": ("the URL cannot be used", "re-run the upload, and if it happens again, report it to Apple"),
}
PART_EXPIRED = (
    "The upload link for {part} of {file} expired{when} before the part was sent{refreshed}; re-run the "
    "upload (it gets fresh links), on a faster connection if the file is large."
)
PART_FILE = (
    "Could not read {part} of {file} while sending it: {what}; leave the file unchanged until the upload "
    "ends, then re-run it."
)

# --- build files to upload (bundles.py) --------------------------------------------------------
# {file} is the path as given (redact.shown); flags as the user spells them ("--platform").
_EXPORT_AGAIN = "export the app again (xcodebuild -exportArchive) and give the path of the .ipa it writes"
BUILD_FILE_UNREADABLE = "The build file {file} {problem}: give the path of the .ipa or .pkg to upload."
BUILD_FILE_EMPTY = (
    "The build file {file} is empty (0 bytes): the step that wrote it did not finish; " + _EXPORT_AGAIN + "."
)
NOT_A_BUILD_FILE = (
    "{file} is neither an .ipa nor a .pkg: give the .ipa (iOS, tvOS, visionOS) or the .pkg (macOS) that "
    "Xcode exports for App Store Connect."
)
NOT_A_ZIP = "{file} is not an IPA, which is a zip archive ({reason}): " + _EXPORT_AGAIN + "."
NO_INFO_PLIST = "{file} has no Payload/<name>.app/Info.plist, so it is not an app's IPA{seen}: " + _EXPORT_AGAIN + "."
SEVERAL_APPS = "{file} holds more than one app in Payload/ ({apps}): " + _EXPORT_AGAIN + "."
INFO_PLIST_TOO_LARGE = (
    "{file}: {member} is {size} bytes, far more than the {limit} bytes an Info.plist may be here, so it "
    "was not read (a damaged archive): " + _EXPORT_AGAIN + "."
)
INFO_PLIST_UNREADABLE = "{file}: {member} could not be read ({reason}): " + _EXPORT_AGAIN + "."
SIMULATOR_BUILD = (
    "{file} is a simulator build ({key} {value}), which App Store Connect never takes: archive for a device "
    "(xcodebuild archive -destination 'generic/platform=iOS'), export it, and upload that .ipa; "
    "{platform} cannot change what the binary was built for."
)
PLATFORMS_TAKEN = "IOS, MAC_OS, TV_OS or VISION_OS"
PLATFORM_MISSING = "{file} does not say which platform it is for ({why}): set {platform} to " + PLATFORMS_TAKEN + "."
PLATFORM_UNKNOWN = (
    "{platform} {value} is not a platform the Build Uploads API takes (for {file}): set it to " + PLATFORMS_TAKEN + "."
)
# {why}: "a .pkg does not say" or "its Info.plist has no CFBundleShortVersionString" (below).
VERSION_MISSING = (
    "{file}: {why}, so the version is unknown: set {version} to the app's version (its "
    "CFBundleShortVersionString, like 1.4.0)."
)
BUILD_NUMBER_MISSING = (
    "{file}: {why}, so the build number is unknown: set {build_number} to the build number (its CFBundleVersion, "
    "like 42), one not uploaded before for this version."
)
BUNDLE_ID_MISSING = (
    "{file}: {why}, so the app is unknown: set {bundle_id} to the app's bundle ID, or {app_id} to its Apple ID "
    "(App Store Connect > App Information)."
)
PKG_DOES_NOT_SAY = "a .pkg does not say it (only an .ipa's Info.plist is read)"
PLIST_LACKS = "its Info.plist has no {key}"
FLAG_WINS = "{flag} {given} differs from {key} {found} in {file}: uploading with {given}, as {flag} says."
