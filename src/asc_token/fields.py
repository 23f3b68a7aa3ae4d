"""``-f/--raw-field`` and ``-F/--field``, as ``gh api`` takes them, and the query or JSON body they make.

As gh keeps request building apart from ``gh api``'s options: a field is ``key=value``; ``-f`` sends the
value as a string, ``-F`` reads ``true``, ``false``, ``null`` and integers as JSON values and ``@file`` (``@-``:
stdin) as that file's text. A query keeps keys as written (``filter[bundleId]``: brackets unencoded, so a
token's scope entries still match) and joins a key given twice with commas (Apple's filters take lists);
a body nests ``data[attributes][name]`` and makes ``key[]`` a list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import IO, Any, Dict, List, Sequence, Tuple, Union
from urllib.parse import quote

from .errors import InputError
from .keys import read_argument_file
from .redact import is_control, shown

MAX_FIELD_FILE_BYTES = 4 * 1024 * 1024  # as --input: App Store Connect takes no larger body
# name, then [part] any number of times; [] (a list) only last
_KEY = re.compile(r"([^\[\]]+)((?:\[[^\[\]]+\])*)(\[\])?")
_PART = re.compile(r"\[([^\[\]]+)\]")
Value = Union[str, int, bool, None]
RAW, TYPED = "-f/--raw-field", "-F/--field"


@dataclass(frozen=True)
class Field:
    key: str
    value: Value


def tag_raw(text: str) -> Tuple[str, str]:
    """argparse's type for -f: both options append to one list, so the order given is kept."""
    return (RAW, text)


def tag_typed(text: str) -> Tuple[str, str]:
    return (TYPED, text)


def read_fields(
    given: Sequence[Tuple[str, str]], stdin: IO[bytes], wait: float, *, input_is_stdin: bool
) -> List[Field]:
    """The fields, checked and typed (or :class:`InputError` naming the option); ``@`` files read now."""
    fields: List[Field] = []
    stdin_taken = False
    for option, text in given:
        key, equals, value = text.partition("=")
        if not equals or not key or any(is_control(char) for char in key):
            raise InputError(
                f"{option} takes KEY=VALUE, such as {option[:2]} 'data[attributes][name]=My App' (the key is not "
                "empty and has no line break; what was given is not shown)."
            )
        if option == RAW:
            fields.append(Field(key, value))
            continue
        if value == "@-":
            if input_is_stdin:
                raise InputError("--input - and -F KEY=@- both read stdin: give one of them a file instead.")
            if stdin_taken:
                raise InputError(
                    f"{option} {shown(key)}=@- reads stdin, which --input - or another @- already reads: give one "
                    "of them a file instead."
                )
            stdin_taken = True
        fields.append(Field(key, typed_value(option, key, value, stdin, wait)))
    return fields


def typed_value(option: str, key: str, text: str, stdin: IO[bytes], wait: float) -> Value:
    """As gh's -F: @file's text, an integer, true, false or null; anything else a string."""
    if text.startswith("@"):
        return _file_text(option, key, text[1:], stdin, wait)
    if re.fullmatch(r"[+-]?[0-9]{1,18}", text):
        return int(text)
    return {"true": True, "false": False, "null": None}.get(text, text)


def _file_text(option: str, key: str, name: str, stdin: IO[bytes], wait: float) -> str:
    where = f"{option} {shown(key)}=@{'-' if name == '-' else ''}"
    where += " (stdin)" if name == "-" else f" file {shown(name, path=True)}"
    wanted = ("a text file after @", "@- for stdin")
    raw = read_argument_file(name, stdin, MAX_FIELD_FILE_BYTES + 1, wait, where=where, wanted=wanted)
    if len(raw) > MAX_FIELD_FILE_BYTES:
        raise InputError(f"{where} is larger than 4 MB: App Store Connect takes no such value; give a smaller file.")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{where} is not UTF-8 text: a field's value is a JSON string; give a text file.") from None


def query_text(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def query(fields: Sequence[Field]) -> str:
    """``key=value&...``: keys as written (brackets kept), values percent-encoded, a repeated key's values joined
    with commas in the order given."""
    joined: Dict[str, List[str]] = {}
    for field in fields:
        joined.setdefault(field.key, []).append(quote(query_text(field.value), safe=""))
    return "&".join(f"{quote(key, safe='[]')}={','.join(values)}" for key, values in joined.items())


def with_query(path: str, fields: Sequence[Field]) -> str:
    """PATH with the fields added to its query (after any it has)."""
    if not fields:
        return path
    base, hash_mark, fragment = path.partition("#")
    separator = "" if base.endswith(("?", "&")) else "&" if "?" in base else "?"
    return f"{base}{separator}{query(fields)}{hash_mark}{fragment}"


def json_body(fields: Sequence[Field]) -> Dict[str, Any]:
    """The JSON document the fields make: ``a[b][c]=v`` nests objects, ``k[]=v`` appends to a list."""
    root: Dict[str, Any] = {}
    for field in fields:
        match = _KEY.fullmatch(field.key)
        if match is None:
            raise InputError(
                f"-f/-F key {shown(field.key)} is not NAME, NAME[part]... or NAME[]: brackets must pair, hold a "
                "name, and [] (a list) come last, as in data[attributes][name] or filter[platform][]."
            )
        name, parts, listed = match.group(1), _PART.findall(match.group(2) or ""), bool(match.group(3))
        *parents, leaf = [name, *parts]
        node = root
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise _clash(field.key)
            node = child
        if listed:
            items = node.setdefault(leaf, [])
            if not isinstance(items, list):
                raise _clash(field.key)
            items.append(field.value)
        elif leaf in node:
            raise _clash(field.key)
        else:
            node[leaf] = field.value
    return root


def _clash(key: str) -> InputError:
    return InputError(
        f"-f/-F key {shown(key)} is given twice, or both as a value and as an object or list: give each key once "
        "(KEY[]=VALUE, repeated, makes a list)."
    )
