"""The build file to upload: what an .ipa's Info.plist says, and the flags merged over it.

Reading is bounded: only the zip's directory and one Info.plist of at most ``INFO_PLIST_LIMIT``
bytes are read, decompressed no further than that, so a damaged archive or a zip bomb costs
nothing. A ``.pkg`` is not opened: its name, size and kind are all the upload needs from it, and
its version, build number and bundle ID come from flags. Every refusal is an
:class:`errors.InputError` (exit 2, nothing sent) naming the file and the flag that fixes it.
"""

from __future__ import annotations

import os
import plistlib
import re
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO, Any, Dict, List, NoReturn, Optional, Tuple, Type
from xml.parsers.expat import ExpatError

from . import messages
from .errors import (
    BuildFileEmptyError,
    BuildFileUnreadableError,
    BuildNumberMissingError,
    BuildSettingError,
    BundleIdMissingError,
    InfoPlistTooLargeError,
    InfoPlistUnreadableError,
    NoInfoPlistError,
    NotABuildFileError,
    NotAZipError,
    PlatformMissingError,
    PlatformUnknownError,
    SeveralAppsError,
    SimulatorBuildError,
    VersionMissingError,
)
from .redact import quote_foreign, shown

IPA_UTI = "com.apple.ipa"
PKG_UTI = "com.apple.pkg"
UTIS = {".ipa": IPA_UTI, ".pkg": PKG_UTI}
INFO_PLIST_LIMIT = 4 * 1024 * 1024  # real ones are a few kB; more is a damaged archive or a bomb
PLATFORMS = ("IOS", "MAC_OS", "TV_OS", "VISION_OS")  # Apple's Platform enum for build uploads
# DTPlatformName, and CFBundleSupportedPlatforms lowercased ("iPhoneOS"), to Apple's Platform.
PLATFORM_NAMES = {"iphoneos": "IOS", "appletvos": "TV_OS", "xros": "VISION_OS", "macosx": "MAC_OS"}
# --platform accepts Apple's names in any case, with or without the underscore.
PLATFORM_FLAG_VALUES = {**{name: name for name in PLATFORMS}, **{name.replace("_", ""): name for name in PLATFORMS}}
PKG_PLATFORM = "MAC_OS"
# How the user spells each setting; the front end's flags (the GitHub step passes its inputs as these).
FLAGS = {
    "bundle_id": "--bundle-id",
    "version": "--version",
    "build_number": "--build-number",
    "platform": "--platform",
    "app_id": "--app-id",
}
_APP_ENTRY = re.compile(r"Payload/([^/]+\.app)/")
# What plistlib's two parsers raise for damaged input, and zipfile for a damaged or odd member.
_PLIST_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError, struct.error, ExpatError, RecursionError)
_MEMBER_ERRORS = (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, OSError, EOFError, ValueError)


@dataclass(frozen=True)
class BuildFile:
    """What the file itself says; ``None`` where it says nothing (always so for a .pkg's facts)."""

    path: str
    file_name: str
    size: int
    uti: str  # IPA_UTI or PKG_UTI
    bundle_id: Optional[str] = None
    version: Optional[str] = None  # CFBundleShortVersionString
    build_number: Optional[str] = None  # CFBundleVersion
    platform: Optional[str] = None  # one of PLATFORMS
    platform_said: Optional[str] = None  # where that came from, for messages: "DTPlatformName iphoneos"

    @property
    def is_package(self) -> bool:
        return self.uti == PKG_UTI


@dataclass(frozen=True)
class ResolvedBuild:
    """The facts the upload sends: the file's, with each flag given winning over it."""

    file: BuildFile
    version: str
    build_number: str
    platform: str  # one of PLATFORMS
    bundle_id: Optional[str]  # None only when app_id is given
    app_id: Optional[str]


def read_build_file(path: str) -> BuildFile:
    """The .ipa's or .pkg's facts; a :class:`errors.BuildFileError` when it is no build Apple takes."""
    quoted = shown(path, path=True)
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise BuildFileUnreadableError(
            messages.BUILD_FILE_UNREADABLE.format(file=quoted, problem="does not exist")
        ) from None
    except OSError as exc:
        problem = f"cannot be read ({exc.strerror or type(exc).__name__})"
        raise BuildFileUnreadableError(messages.BUILD_FILE_UNREADABLE.format(file=quoted, problem=problem)) from None
    if stat.S_ISDIR(status.st_mode):
        # Often the .xcarchive or the .app itself, not what -exportArchive writes.
        problem = "is a folder, not a file (an .xcarchive or .app is exported to an .ipa or .pkg first)"
        raise BuildFileUnreadableError(messages.BUILD_FILE_UNREADABLE.format(file=quoted, problem=problem))
    if not stat.S_ISREG(status.st_mode):
        problem = "is not a regular file (its size must be known before the upload starts)"
        raise BuildFileUnreadableError(messages.BUILD_FILE_UNREADABLE.format(file=quoted, problem=problem))
    if status.st_size == 0:
        raise BuildFileEmptyError(messages.BUILD_FILE_EMPTY.format(file=quoted))
    uti = UTIS.get(os.path.splitext(path)[1].lower())
    if uti is None:
        raise NotABuildFileError(messages.NOT_A_BUILD_FILE.format(file=quoted))
    record = BuildFile(path=path, file_name=os.path.basename(path), size=status.st_size, uti=uti)
    try:
        with open(path, "rb") as stream:
            return record if uti == PKG_UTI else _with_info_plist(record, _info_plist(stream, quoted), quoted)
    except OSError as exc:
        problem = f"cannot be read ({exc.strerror or type(exc).__name__})"
        raise BuildFileUnreadableError(messages.BUILD_FILE_UNREADABLE.format(file=quoted, problem=problem)) from None


def _info_plist(stream: IO[bytes], quoted: str) -> Dict[str, Any]:
    """The one app's Info.plist from the IPA's zip, read no further than INFO_PLIST_LIMIT."""
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise NotAZipError(messages.NOT_A_ZIP.format(file=quoted, reason=quote_foreign(exc, 120))) from None
    with archive:
        names = archive.namelist()
        apps = sorted({found.group(1) for found in map(_APP_ENTRY.match, names) if found})
        if len(apps) > 1:
            listed = ", ".join(quote_foreign(app, 60) for app in apps[:4]) + (", ..." if len(apps) > 4 else "")
            raise SeveralAppsError(messages.SEVERAL_APPS.format(file=quoted, apps=listed))
        member = f"Payload/{apps[0]}/Info.plist" if apps else ""
        if member not in names:
            seen = f" (Payload/{quote_foreign(apps[0], 60)} has none)" if apps else " (no Payload/<name>.app folder)"
            raise NoInfoPlistError(messages.NO_INFO_PLIST.format(file=quoted, seen=seen))
        shown_member = quote_foreign(member, 120)
        info = archive.getinfo(member)
        if info.file_size > INFO_PLIST_LIMIT:
            raise _too_large(quoted, shown_member, info.file_size)
        try:
            with archive.open(info) as opened:
                # One byte past the limit: a header that lies about the size is caught without inflating more.
                data = opened.read(INFO_PLIST_LIMIT + 1)
        except _MEMBER_ERRORS as exc:
            reason = quote_foreign(f"{type(exc).__name__}: {exc}", 160)
            raise InfoPlistUnreadableError(
                messages.INFO_PLIST_UNREADABLE.format(file=quoted, member=shown_member, reason=reason)
            ) from None
    if len(data) > INFO_PLIST_LIMIT:
        raise _too_large(quoted, shown_member, len(data))
    return _parsed(data, quoted, shown_member)


def _too_large(quoted: str, member: str, size: int) -> InfoPlistTooLargeError:
    return InfoPlistTooLargeError(
        messages.INFO_PLIST_TOO_LARGE.format(file=quoted, member=member, size=size, limit=INFO_PLIST_LIMIT)
    )


def _parsed(data: bytes, quoted: str, member: str) -> Dict[str, Any]:
    try:
        plist = plistlib.loads(data)  # binary or XML; XML entity declarations are refused by plistlib
    except _PLIST_ERRORS as exc:
        reason = quote_foreign(f"not a property list: {type(exc).__name__}: {exc}", 160)
        raise InfoPlistUnreadableError(
            messages.INFO_PLIST_UNREADABLE.format(file=quoted, member=member, reason=reason)
        ) from None
    if not isinstance(plist, dict):
        reason = f"a property list of a {type(plist).__name__}, not of a dictionary"
        raise InfoPlistUnreadableError(messages.INFO_PLIST_UNREADABLE.format(file=quoted, member=member, reason=reason))
    return plist


def _text(value: Any) -> Optional[str]:
    return value.strip() or None if isinstance(value, str) else None


def _with_info_plist(record: BuildFile, plist: Dict[str, Any], quoted: str) -> BuildFile:
    platform, said = _platform(plist, quoted)
    return BuildFile(
        path=record.path,
        file_name=record.file_name,
        size=record.size,
        uti=record.uti,
        bundle_id=_text(plist.get("CFBundleIdentifier")),
        version=_text(plist.get("CFBundleShortVersionString")),
        build_number=_text(plist.get("CFBundleVersion")),
        platform=platform,
        platform_said=said,
    )


def _platform(plist: Dict[str, Any], quoted: str) -> Tuple[Optional[str], Optional[str]]:
    """Apple's Platform from DTPlatformName, else from CFBundleSupportedPlatforms, and what the file said."""
    named = _text(plist.get("DTPlatformName"))
    if named is not None:
        said = f"DTPlatformName {quote_foreign(named, 60)}"
        _refuse_simulator(quoted, "DTPlatformName", [named])
        return PLATFORM_NAMES.get(named.lower()), said
    listed = plist.get("CFBundleSupportedPlatforms")
    names = [text for text in map(_text, listed) if text] if isinstance(listed, list) else []
    if not names:
        return None, None
    said = f"CFBundleSupportedPlatforms {quote_foreign(', '.join(names), 80)}"
    _refuse_simulator(quoted, "CFBundleSupportedPlatforms", names)
    found = {PLATFORM_NAMES.get(name.lower()) for name in names}
    return (found.pop(), said) if len(found) == 1 else (None, said)  # {None} or several: the flag decides


def _refuse_simulator(quoted: str, key: str, names: List[str]) -> None:
    simulators = [name for name in names if name.lower().endswith("simulator")]
    if simulators:
        raise SimulatorBuildError(
            messages.SIMULATOR_BUILD.format(
                file=quoted, key=key, value=quote_foreign(simulators[0], 60), platform=FLAGS["platform"]
            )
        )


def resolve_build(
    facts: BuildFile,
    *,
    bundle_id: Optional[str],
    version: Optional[str],
    build_number: Optional[str],
    platform: Optional[str],
    app_id: Optional[str],
) -> Tuple[ResolvedBuild, List[str]]:
    """The facts to send, each flag given (not empty) winning over the file, and one note per flag that
    disagrees with the file. A .pkg needs --version and --build-number, --bundle-id unless --app-id,
    and is MAC_OS unless --platform says otherwise. Raises :class:`errors.BuildSettingError`."""
    quoted = shown(facts.path, path=True)
    given = {
        "bundle_id": _text(bundle_id),
        "version": _text(version),
        "build_number": _text(build_number),
        "platform": _platform_flag(_text(platform), quoted),
        "app_id": _text(app_id),
    }
    notes: List[str] = []
    said = {
        "bundle_id": ("CFBundleIdentifier", facts.bundle_id),
        "version": ("CFBundleShortVersionString", facts.version),
        "build_number": ("CFBundleVersion", facts.build_number),
        "platform": ("the platform", facts.platform and f"{facts.platform} ({facts.platform_said})"),
    }
    for name, (key, found) in said.items():
        flag_value, file_value = given[name], getattr(facts, name)
        if flag_value is not None and file_value is not None and flag_value != file_value:
            notes.append(
                messages.FLAG_WINS.format(
                    flag=FLAGS[name],
                    given=quote_foreign(flag_value, 80),
                    key=key,
                    found=quote_foreign(found, 120),
                    file=quoted,
                )
            )
    chosen = {name: given[name] or getattr(facts, name, None) for name in given}
    resolved = ResolvedBuild(
        file=facts,
        version=chosen["version"] or _missing(VersionMissingError, facts, "CFBundleShortVersionString"),
        build_number=chosen["build_number"] or _missing(BuildNumberMissingError, facts, "CFBundleVersion"),
        platform=chosen["platform"] or (PKG_PLATFORM if facts.is_package else _platform_missing(facts, quoted)),
        bundle_id=chosen["bundle_id"]
        or (None if chosen["app_id"] else _missing(BundleIdMissingError, facts, "CFBundleIdentifier")),
        app_id=chosen["app_id"],
    )
    return resolved, notes


def _platform_flag(value: Optional[str], quoted: str) -> Optional[str]:
    if value is None:
        return None
    platform = PLATFORM_FLAG_VALUES.get(value.upper().replace("-", "_"))
    if platform is None:
        raise PlatformUnknownError(
            messages.PLATFORM_UNKNOWN.format(platform=FLAGS["platform"], value=quote_foreign(value, 60), file=quoted)
        )
    return platform


_MISSING_TEMPLATES: Dict[Type[BuildSettingError], str] = {
    VersionMissingError: messages.VERSION_MISSING,
    BuildNumberMissingError: messages.BUILD_NUMBER_MISSING,
    BundleIdMissingError: messages.BUNDLE_ID_MISSING,
}


def _missing(error: Type[BuildSettingError], facts: BuildFile, key: str) -> NoReturn:
    why = messages.PKG_DOES_NOT_SAY if facts.is_package else messages.PLIST_LACKS.format(key=key)
    template = _MISSING_TEMPLATES[error]
    raise error(template.format(file=shown(facts.path, path=True), why=why, **FLAGS))


def _platform_missing(facts: BuildFile, quoted: str) -> NoReturn:
    if facts.platform_said is None:
        why = "its Info.plist has neither DTPlatformName nor CFBundleSupportedPlatforms"
    else:
        why = f"its Info.plist's {facts.platform_said} is not one the Build Uploads API takes"
    raise PlatformMissingError(messages.PLATFORM_MISSING.format(file=quoted, why=why, platform=FLAGS["platform"]))
