"""bundles: an .ipa's Info.plist (binary or XML), a .pkg, every refusal, and the flags merged over the file.

The IPAs are built here with zipfile and plistlib, shaped as xcodebuild -exportArchive writes them.
"""

from __future__ import annotations

import os
import plistlib
import zipfile
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple, Type

import pytest

from asc_token import errors
from asc_token.bundles import (
    INFO_PLIST_LIMIT,
    IPA_UTI,
    PKG_UTI,
    BuildFile,
    ResolvedBuild,
    read_build_file,
    resolve_build,
)

from .builds import INFO, Members, make_ipa, with_info, write_zip


def refused(error: Type[errors.AscTokenError], path: Path) -> str:
    with pytest.raises(error) as raised:
        read_build_file(str(path))
    assert isinstance(raised.value, errors.InputError) and raised.value.exit_code == errors.EXIT_USAGE
    assert path.name in raised.value.message, "every refusal names the file"
    return raised.value.message


# --- reading ------------------------------------------------------------------------------------


@pytest.mark.parametrize("xml", [False, True], ids=["binary", "xml"])
def test_an_ipa_says_its_bundle_id_version_build_and_platform(tmp_path: Path, xml: bool) -> None:
    path = make_ipa(tmp_path, xml=xml)
    facts = read_build_file(str(path))
    assert facts == BuildFile(
        path=str(path),
        file_name="App.ipa",
        size=path.stat().st_size,
        uti=IPA_UTI,
        bundle_id="com.example.app",
        version="1.4.0",
        build_number="42",
        platform="IOS",
        platform_said="DTPlatformName iphoneos",
    )
    assert not facts.is_package


@pytest.mark.parametrize(
    ("changes", "platform", "said"),
    [
        ({"DTPlatformName": "iphoneos"}, "IOS", "DTPlatformName iphoneos"),
        ({"DTPlatformName": "appletvos"}, "TV_OS", "DTPlatformName appletvos"),
        ({"DTPlatformName": "xros"}, "VISION_OS", "DTPlatformName xros"),
        ({"DTPlatformName": "macosx"}, "MAC_OS", "DTPlatformName macosx"),
        # DTPlatformName decides when present, even over CFBundleSupportedPlatforms
        ({"DTPlatformName": "appletvos", "CFBundleSupportedPlatforms": ["iPhoneOS"]}, "TV_OS", None),
        ({"DTPlatformName": "watchos"}, None, "DTPlatformName watchos"),  # not a build upload platform
        ({"DTPlatformName": None, "CFBundleSupportedPlatforms": ["AppleTVOS"]}, "TV_OS", None),
        ({"DTPlatformName": None, "CFBundleSupportedPlatforms": ["XROS"]}, "VISION_OS", None),
        ({"DTPlatformName": None, "CFBundleSupportedPlatforms": ["iPhoneOS", "iPhoneOS"]}, "IOS", None),
        ({"DTPlatformName": None, "CFBundleSupportedPlatforms": ["iPhoneOS", "MacOSX"]}, None, None),
        ({"DTPlatformName": None, "CFBundleSupportedPlatforms": ["WatchOS"]}, None, None),
        ({"DTPlatformName": None, "CFBundleSupportedPlatforms": []}, None, None),
        ({"DTPlatformName": None, "CFBundleSupportedPlatforms": "iPhoneOS"}, None, None),  # not a list
        ({"DTPlatformName": None, "CFBundleSupportedPlatforms": None}, None, None),
        ({"DTPlatformName": "  ", "CFBundleSupportedPlatforms": ["iPhoneOS"]}, "IOS", None),  # blank: absent
    ],
)
def test_the_platform_comes_from_dtplatformname_else_the_supported_platforms(
    tmp_path: Path, changes: Dict[str, Any], platform: Optional[str], said: Optional[str]
) -> None:
    facts = read_build_file(str(make_ipa(tmp_path, with_info(**changes))))
    assert facts.platform == platform
    if said is not None:
        assert facts.platform_said == said
    if (
        "DTPlatformName" in changes
        and changes["DTPlatformName"] is None
        and isinstance(changes.get("CFBundleSupportedPlatforms"), list)
        and changes["CFBundleSupportedPlatforms"]
    ):
        assert (facts.platform_said or "").startswith("CFBundleSupportedPlatforms ")


@pytest.mark.parametrize(
    "changes",
    [
        {"DTPlatformName": "iphonesimulator"},
        {"DTPlatformName": "xrsimulator"},
        {"DTPlatformName": "AppleTVSimulator"},
        {"DTPlatformName": None, "CFBundleSupportedPlatforms": ["iPhoneSimulator"]},
        {"DTPlatformName": None, "CFBundleSupportedPlatforms": ["iPhoneOS", "iPhoneSimulator"]},
    ],
)
def test_a_simulator_build_is_refused(tmp_path: Path, changes: Dict[str, Any]) -> None:
    message = refused(errors.SimulatorBuildError, make_ipa(tmp_path, with_info(**changes)))
    assert "simulator build" in message and "imulator" in message.split("(")[1]
    assert "--platform" in message  # which cannot fix it: said so


def test_missing_or_odd_values_are_none(tmp_path: Path) -> None:
    info = with_info(CFBundleIdentifier=None, CFBundleShortVersionString=" ", CFBundleVersion=42)
    facts = read_build_file(str(make_ipa(tmp_path, info, xml=True)))
    assert (facts.bundle_id, facts.version, facts.build_number) == (None, None, None)


def test_values_are_trimmed(tmp_path: Path) -> None:
    facts = read_build_file(str(make_ipa(tmp_path, with_info(CFBundleVersion=" 43\n"))))
    assert facts.build_number == "43"


@pytest.mark.parametrize("name", ["App.pkg", "APP.PKG"])
def test_a_pkg_gives_only_its_name_size_and_kind(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"xar!" + bytes(1000))
    facts = read_build_file(str(path))
    assert facts == BuildFile(path=str(path), file_name=name, size=1004, uti=PKG_UTI)
    assert facts.is_package and facts.platform is None


def test_an_ipa_named_in_capitals(tmp_path: Path) -> None:
    assert read_build_file(str(make_ipa(tmp_path, name="APP.IPA"))).uti == IPA_UTI


# --- refusals -----------------------------------------------------------------------------------


def test_a_file_that_does_not_exist(tmp_path: Path) -> None:
    assert "does not exist" in refused(errors.BuildFileUnreadableError, tmp_path / "Missing.ipa")


def test_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "App.xcarchive"
    folder.mkdir()
    assert "is a folder" in refused(errors.BuildFileUnreadableError, folder)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a user that permissions apply to")
def test_a_file_that_cannot_be_read(tmp_path: Path) -> None:
    path = make_ipa(tmp_path)
    path.chmod(0)
    try:
        assert "cannot be read" in refused(errors.BuildFileUnreadableError, path)
    finally:
        path.chmod(0o600)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_pipe_is_no_build_file(tmp_path: Path) -> None:
    pipe = tmp_path / "App.ipa"
    os.mkfifo(pipe)
    assert "not a regular file" in refused(errors.BuildFileUnreadableError, pipe)


@pytest.mark.parametrize("name", ["App.ipa", "App.pkg", "App.zip"])
def test_an_empty_file(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"")
    assert "empty" in refused(errors.BuildFileEmptyError, tmp_path / name)


@pytest.mark.parametrize("name", ["App.zip", "App.app.dSYM", "App", "App.ipa.txt"])
def test_neither_ipa_nor_pkg(tmp_path: Path, name: str) -> None:
    path = make_ipa(tmp_path, name=name)
    assert ".ipa" in refused(errors.NotABuildFileError, path)


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "App.ipa"
    path.write_bytes(b"<html>404 Not Found</html>")
    assert "not an IPA" in refused(errors.NotAZipError, path)


def test_a_truncated_zip(tmp_path: Path) -> None:
    whole = make_ipa(tmp_path).read_bytes()
    path = tmp_path / "Cut.ipa"
    path.write_bytes(whole[: len(whole) // 2])  # the directory at the end is gone
    refused(errors.NotAZipError, path)


@pytest.mark.parametrize(
    ("members", "said"),
    [
        ([("App.app/Info.plist", plistlib.dumps(INFO))], "no Payload/<name>.app folder"),
        ([("Payload/App.app/App", b"binary")], "has none"),
        ([("Payload/Info.plist", plistlib.dumps(INFO))], "no Payload/<name>.app folder"),
        ([("Payload/App.app/Contents/Info.plist", plistlib.dumps(INFO))], "has none"),
    ],
)
def test_no_info_plist(tmp_path: Path, members: Members, said: str) -> None:
    message = refused(errors.NoInfoPlistError, write_zip(tmp_path / "App.ipa", members))
    assert said in message


def test_several_apps(tmp_path: Path) -> None:
    members = [(f"Payload/{app}/Info.plist", plistlib.dumps(INFO)) for app in ("One.app", "Two.app")]
    assert "One.app, Two.app" in refused(errors.SeveralAppsError, write_zip(tmp_path / "App.ipa", members))


def test_an_info_plist_larger_than_the_limit_is_never_inflated(tmp_path: Path) -> None:
    """A zip bomb's member: 64 MiB of zeros in a few kB; its declared size alone refuses it."""
    bomb = bytes(64 * 1024 * 1024)
    path = write_zip(tmp_path / "App.ipa", [("Payload/App.app/Info.plist", bomb)])
    assert path.stat().st_size < 1024 * 1024
    message = refused(errors.InfoPlistTooLargeError, path)
    assert str(len(bomb)) in message and str(INFO_PLIST_LIMIT) in message


def test_an_info_plist_at_the_limit_is_read(tmp_path: Path) -> None:
    padded = plistlib.dumps({**INFO, "Padding": "x" * (INFO_PLIST_LIMIT - 2000)}, fmt=plistlib.FMT_XML)
    assert INFO_PLIST_LIMIT - 2000 < len(padded) <= INFO_PLIST_LIMIT
    path = write_zip(tmp_path / "App.ipa", [("Payload/App.app/Info.plist", padded)])
    assert read_build_file(str(path)).build_number == "42"


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;">]>'
    b'<plist version="1.0"><dict><key>CFBundleVersion</key><string>&b;</string></dict></plist>'
)


@pytest.mark.parametrize(
    "data",
    [
        b"not a property list",
        b"bplist00\xff\xff\xff",  # a binary plist's magic, then damage
        plistlib.dumps(INFO)[:-30],  # XML cut short
        BILLION_LAUGHS,  # entity declarations: plistlib refuses them
        b"",
    ],
    ids=["text", "damaged-binary", "cut-xml", "entities", "empty"],
)
def test_an_info_plist_that_is_no_property_list(tmp_path: Path, data: bytes) -> None:
    path = write_zip(tmp_path / "App.ipa", [("Payload/App.app/Info.plist", data)])
    assert "could not be read" in refused(errors.InfoPlistUnreadableError, path)


@pytest.mark.parametrize("top", [["a", "list"], "a string", 42])
def test_an_info_plist_that_is_no_dictionary(tmp_path: Path, top: Any) -> None:
    path = write_zip(tmp_path / "App.ipa", [("Payload/App.app/Info.plist", plistlib.dumps(top))])
    assert "not of a dictionary" in refused(errors.InfoPlistUnreadableError, path)


def test_a_damaged_member_fails_its_checksum(tmp_path: Path) -> None:
    stored = write_zip(
        tmp_path / "Good.ipa", [("Payload/App.app/Info.plist", plistlib.dumps(INFO))], compression=zipfile.ZIP_STORED
    )
    data = stored.read_bytes().replace(b"com.example.app", b"com.example.bad", 1)
    path = tmp_path / "App.ipa"
    path.write_bytes(data)
    assert "CRC" in refused(errors.InfoPlistUnreadableError, path)


def test_an_encrypted_member(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "App.ipa", [("Payload/App.app/Info.plist", plistlib.dumps(INFO))])
    raw = bytearray(path.read_bytes())
    # Bit 0 of the general purpose flags, "encrypted" (zipfile then asks for a password), set in the local
    # header (flags at offset 6) and the central directory entry (offset 8), as an encrypting zip writes it.
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        raw[raw.index(signature) + offset] |= 0x1
    path.write_bytes(bytes(raw))
    refused(errors.InfoPlistUnreadableError, path)


# --- flags over the file ------------------------------------------------------------------------


def ipa_facts(**changes: Any) -> BuildFile:
    values: Dict[str, Any] = {
        "path": "build/App.ipa",
        "file_name": "App.ipa",
        "size": 1000,
        "uti": IPA_UTI,
        "bundle_id": "com.example.app",
        "version": "1.4.0",
        "build_number": "42",
        "platform": "IOS",
        "platform_said": "DTPlatformName iphoneos",
    }
    return BuildFile(**{**values, **changes})


PKG = BuildFile(path="build/App.pkg", file_name="App.pkg", size=1000, uti=PKG_UTI)
NO_FLAGS: Dict[str, Optional[str]] = {
    "bundle_id": None,
    "version": None,
    "build_number": None,
    "platform": None,
    "app_id": None,
}


def resolve(facts: BuildFile, **flags: Optional[str]) -> Tuple[ResolvedBuild, list[str]]:
    given = {**NO_FLAGS, **flags}
    return resolve_build(
        facts,
        bundle_id=given["bundle_id"],
        version=given["version"],
        build_number=given["build_number"],
        platform=given["platform"],
        app_id=given["app_id"],
    )


def test_the_file_alone() -> None:
    facts = ipa_facts()
    assert resolve(facts) == (
        ResolvedBuild(
            file=facts, version="1.4.0", build_number="42", platform="IOS", bundle_id="com.example.app", app_id=None
        ),
        [],
    )


def test_flags_that_agree_or_are_empty_say_nothing() -> None:
    resolved, notes = resolve(
        ipa_facts(), bundle_id="com.example.app", version="1.4.0", build_number="", platform="ios"
    )
    assert notes == [] and resolved.build_number == "42" and resolved.platform == "IOS"


@pytest.mark.parametrize(
    ("flag", "value", "field", "words"),
    [
        (
            "bundle_id",
            "com.example.other",
            "bundle_id",
            ("--bundle-id com.example.other", "CFBundleIdentifier com.example.app"),
        ),
        ("version", "1.5.0", "version", ("--version 1.5.0", "CFBundleShortVersionString 1.4.0")),
        ("build_number", "43", "build_number", ("--build-number 43", "CFBundleVersion 42")),
        ("platform", "VISION_OS", "platform", ("--platform VISION_OS", "IOS (DTPlatformName iphoneos)")),
    ],
)
def test_a_flag_that_disagrees_wins_and_a_note_names_both(
    flag: str, value: str, field: str, words: Tuple[str, str]
) -> None:
    resolved, notes = resolve(ipa_facts(), **{flag: value})
    assert getattr(resolved, field) == value
    assert len(notes) == 1
    assert all(word in notes[0] for word in words) and "'build/App.ipa'" in notes[0]


@pytest.mark.parametrize(
    ("given", "platform"),
    [
        ("IOS", "IOS"),
        ("ios", "IOS"),
        ("mac_os", "MAC_OS"),
        ("macos", "MAC_OS"),
        ("TVOS", "TV_OS"),
        ("vision-os", "VISION_OS"),
        (" visionOS ", "VISION_OS"),
    ],
)
def test_platform_flag_spellings(given: str, platform: str) -> None:
    assert resolve(ipa_facts(platform=None, platform_said=None), platform=given)[0].platform == platform


@pytest.mark.parametrize("given", ["android", "iphoneos", "WATCH_OS", "I OS"])
def test_a_platform_flag_apple_does_not_take(given: str) -> None:
    with pytest.raises(errors.PlatformUnknownError) as raised:
        resolve(ipa_facts(), platform=given)
    assert "--platform" in raised.value.message and "VISION_OS" in raised.value.message
    assert raised.value.exit_code == errors.EXIT_USAGE


@pytest.mark.parametrize(
    ("facts", "flags", "error", "words"),
    [
        (
            ipa_facts(platform=None, platform_said=None),
            {},
            errors.PlatformMissingError,
            ("--platform", "neither DTPlatformName nor"),
        ),
        (
            ipa_facts(platform=None, platform_said="DTPlatformName watchos"),
            {},
            errors.PlatformMissingError,
            ("--platform", "watchos"),
        ),
        (ipa_facts(version=None), {}, errors.VersionMissingError, ("--version", "CFBundleShortVersionString")),
        (ipa_facts(build_number=None), {}, errors.BuildNumberMissingError, ("--build-number", "CFBundleVersion")),
        (ipa_facts(bundle_id=None), {}, errors.BundleIdMissingError, ("--bundle-id", "--app-id", "CFBundleIdentifier")),
        (PKG, {"build_number": "7", "bundle_id": "b"}, errors.VersionMissingError, ("--version", "a .pkg")),
        (PKG, {"version": "1.0", "bundle_id": "b"}, errors.BuildNumberMissingError, ("--build-number", "a .pkg")),
        (PKG, {"version": "1.0", "build_number": "7"}, errors.BundleIdMissingError, ("--bundle-id", "--app-id")),
    ],
)
def test_what_neither_the_file_nor_a_flag_says(
    facts: BuildFile, flags: Dict[str, str], error: Type[errors.AscTokenError], words: Sequence[str]
) -> None:
    with pytest.raises(error) as raised:
        resolve(facts, **flags)
    assert isinstance(raised.value, errors.BuildSettingError) and raised.value.exit_code == errors.EXIT_USAGE
    assert all(word in raised.value.message for word in words)
    assert os.path.basename(facts.path) in raised.value.message


def test_the_flag_fills_what_the_file_lacks_without_a_note() -> None:
    resolved, notes = resolve(ipa_facts(platform=None, build_number=None), platform="tv_os", build_number="9")
    assert (resolved.platform, resolved.build_number, notes) == ("TV_OS", "9", [])


def test_an_app_id_stands_for_the_bundle_id() -> None:
    resolved, _ = resolve(ipa_facts(bundle_id=None), app_id=" 1234567890 ")
    assert (resolved.bundle_id, resolved.app_id) == (None, "1234567890")
    resolved, _ = resolve(ipa_facts(), app_id="1234567890")
    assert (resolved.bundle_id, resolved.app_id) == ("com.example.app", "1234567890")


def test_a_pkg_with_its_flags_is_for_macos() -> None:
    resolved, notes = resolve(PKG, version="2.0", build_number="200", bundle_id="com.example.mac")
    assert resolved == ResolvedBuild(
        file=PKG, version="2.0", build_number="200", platform="MAC_OS", bundle_id="com.example.mac", app_id=None
    )
    assert notes == []


def test_a_pkg_takes_the_platform_flag_and_an_app_id() -> None:
    resolved, notes = resolve(PKG, version="2.0", build_number="200", app_id="99", platform="ios")
    assert (resolved.platform, resolved.bundle_id, resolved.app_id, notes) == ("IOS", None, "99", [])


def test_read_then_resolve(tmp_path: Path) -> None:
    facts = read_build_file(str(make_ipa(tmp_path, with_info(DTPlatformName="appletvos"), xml=True)))
    resolved, notes = resolve(facts, build_number="43")
    assert (resolved.platform, resolved.version, resolved.build_number) == ("TV_OS", "1.4.0", "43")
    assert notes == [
        f"--build-number 43 differs from CFBundleVersion 42 in {str(facts.path)!r}: uploading with 43, as --build-number says."
    ]
