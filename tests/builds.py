"""Build files for the upload tests: IPAs shaped as xcodebuild -exportArchive writes them (zipfile, plistlib)."""

from __future__ import annotations

import os
import plistlib
import zipfile
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple, Union

from devtools.standin import DEMO_BUNDLE_ID

INFO: Dict[str, Any] = {
    "CFBundleIdentifier": "com.example.app",
    "CFBundleShortVersionString": "1.4.0",
    "CFBundleVersion": "42",
    "CFBundleSupportedPlatforms": ["iPhoneOS"],
    "DTPlatformName": "iphoneos",
    "CFBundleExecutable": "App",
}
Members = Sequence[Tuple[str, Union[bytes, str]]]


def write_zip(path: Path, members: Members, *, compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return path


def make_ipa(
    folder: Path,
    info: Optional[Dict[str, Any]] = None,
    *,
    xml: bool = False,
    app: str = "App.app",
    name: str = "App.ipa",
    padding: int = 0,
) -> Path:
    """An IPA as Xcode exports it: Payload/App.app/{Info.plist, App, ...}, with Info.plist binary unless ``xml``;
    ``padding``: that many random bytes more (stored, so the file is about that large)."""
    plist = plistlib.dumps(INFO if info is None else info, fmt=plistlib.FMT_XML if xml else plistlib.FMT_BINARY)
    return write_zip(
        folder / name,
        [
            (f"Payload/{app}/Info.plist", plist),
            (f"Payload/{app}/App", b"\xcf\xfa\xed\xfe" + bytes(2048)),
            (f"Payload/{app}/Frameworks/Kit.framework/Info.plist", plistlib.dumps({"CFBundleIdentifier": "kit"})),
            ("Symbols/ABC.symbols", b"sym"),
            *([(f"Payload/{app}/Assets.car", os.urandom(padding))] if padding else []),
        ],
    )


def with_info(**changes: Any) -> Dict[str, Any]:
    """INFO with keys changed; a value of None removes the key."""
    info = {**INFO, **changes}
    return {key: value for key, value in info.items() if value is not None}


def demo_ipa(folder: Path, size: int, **changes: Any) -> Path:
    """An IPA for the stand-in's demo app, padded with incompressible bytes to about ``size``;
    ``changes``: Info.plist keys (None removes one)."""
    return make_ipa(folder, with_info(**{"CFBundleIdentifier": DEMO_BUNDLE_ID, **changes}), padding=size)
