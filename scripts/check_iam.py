#!/usr/bin/env python3
"""Holds each function's IAM grants in template.yaml to the AWS calls its Rust code makes.

For every AWS::Serverless::Function with Metadata.BuildProperties.Binary:
  * the crates it links: functions/<crate>/Cargo.toml's path dependencies, recursively
    (`dep.workspace = true` resolved through the root [workspace.dependencies]);
  * the code it can run: a call graph by name from the binary's main.rs through every non-test
    `fn` of those crates (`.name(` reaches methods, `path::name` any fn, a bare `name` free
    fns), held to Rust's visibility (a private or `pub(super)` fn only from its module's
    files) and to the crates' dependencies (a crate calls only into crates it depends on, or,
    for trait methods, implementations of traits it can name). Names collide, so it may reach
    more than the binary runs; it misses only what a library calls back by a name nothing in
    the workspace uses (an impl of an outside trait);
  * the AWS operations in that code: `.operation()` of the aws-sdk-* crates those crates link
    (operation names from the crates' sources in the cargo registry), as IAM actions (the
    batch forms of SQS are the single action, TransactWriteItems is its members' actions);
and then fails when
  * an action is granted that no reachable call needs (unused: remove it), or
  * a reachable call needs an action that is not granted (a call that would be refused), or
  * a DynamoDB index is granted as `index/*`, or an index is granted that the code does not
    query, or queried but not granted, or the table itself is granted Query with no Query
    on it.
Only the template's own statements are checked: what SAM adds for event sources (the SQS
poller's Receive/Delete/GetQueueAttributes, the stream reader, the on-failure destination)
is the platform's and needs no code.

A call the name graph reaches but the function never makes can be declared in the function's
Metadata, one line of reason each, and the declaration must still match a call:
    IamCheck:
      NotCalled:
        shared/store/src/dynamo/moves.rs::check: the analyzer's take-over, not the tracker's

Usage: check_iam.py [template.yaml] [-v] [--why]     (`make validate` runs it)
  -v     every call behind each action;  --why  also how each call is reached from main
Exit status: 0 every grant matches the code, 1 findings, 2 the check could not run.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent

# aws-sdk-<crate> → IAM service prefix, where they differ.
IAM_PREFIX = {
    "eventbridge": "events",
    "cloudwatchlogs": "logs",
    "sfn": "states",
    "apigatewaymanagement": "execute-api",
    "scheduler": "scheduler",
}

# SDK operations whose IAM action is not the operation's own name. None: see TRANSACT_MEMBERS.
SPECIAL_ACTIONS: dict[tuple[str, str], list[str] | None] = {
    ("dynamodb", "transact_write_items"): None,
    ("dynamodb", "transact_get_items"): ["dynamodb:GetItem"],
    ("sqs", "send_message_batch"): ["sqs:SendMessage"],
    ("sqs", "delete_message_batch"): ["sqs:DeleteMessage"],
    ("sqs", "change_message_visibility_batch"): ["sqs:ChangeMessageVisibility"],
    ("s3", "head_object"): ["s3:GetObject"],
    ("s3", "head_bucket"): ["s3:ListBucket"],
    ("s3", "list_objects"): ["s3:ListBucket"],
    ("s3", "list_objects_v2"): ["s3:ListBucket"],
    ("s3", "delete_objects"): ["s3:DeleteObject"],
    ("s3", "create_multipart_upload"): ["s3:PutObject"],
    ("s3", "upload_part"): ["s3:PutObject"],
    ("s3", "complete_multipart_upload"): ["s3:PutObject"],
    ("s3", "list_parts"): ["s3:ListMultipartUploadParts"],
    ("s3", "copy_object"): ["s3:GetObject", "s3:PutObject"],
    ("execute-api", "post_to_connection"): ["execute-api:ManageConnections"],
    ("execute-api", "delete_connection"): ["execute-api:ManageConnections"],
    ("execute-api", "get_connection"): ["execute-api:ManageConnections"],
}

# A TransactWriteItems needs the action of each kind of member it carries.
TRANSACT_MEMBERS = {
    "update": "dynamodb:UpdateItem",
    "condition_check": "dynamodb:ConditionCheckItem",
    "put": "dynamodb:PutItem",
    "delete": "dynamodb:DeleteItem",
}
TRANSACT_MEMBER_RE = re.compile(r"TransactWriteItem\s*::\s*builder\s*\(\s*\)\s*\.\s*(?:set_)?(update|condition_check|put|delete)\s*\(")

# Actions on which index ARNs are meaningful.
INDEX_ACTIONS = {"dynamodb:Query", "dynamodb:Scan"}


def cfn_loader() -> type[yaml.SafeLoader]:
    class Loader(yaml.SafeLoader):
        pass

    def construct(loader: yaml.SafeLoader, suffix: str, node: yaml.Node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        if suffix == "Ref":
            return {"Ref": value}
        if suffix == "Condition":
            return {"Condition": value}
        if suffix == "GetAtt" and isinstance(value, str):
            return {"Fn::GetAtt": value.split(".", 1)}
        return {f"Fn::{suffix}": value}

    Loader.add_multi_constructor("!", construct)
    return Loader


def render(value) -> str:
    """A resource as text: `JobsTable.Arn`, `${JobsTable.Arn}/index/by_cache`, `Queue`."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (key, inner), = value.items()
        if key == "Ref":
            return str(inner)
        if key == "Fn::GetAtt":
            return ".".join(inner) if isinstance(inner, list) else str(inner)
        if key == "Fn::Sub":
            return inner if isinstance(inner, str) else str(inner[0])
    return repr(value)


# ---------------------------------------------------------------------------------------------
# Cargo: which crates a binary links, and which SDK crates they use.


@dataclass
class Crate:
    name: str
    dir: Path
    manifest: dict
    bins: dict[str, Path] = field(default_factory=dict)


def load_toml(path: Path) -> dict:
    with path.open("rb") as f:
        return tomllib.load(f)


def workspace_crates(root: Path) -> tuple[dict, dict[str, Crate]]:
    manifest = load_toml(root / "Cargo.toml")
    crates: dict[str, Crate] = {}
    for member in manifest.get("workspace", {}).get("members", []):
        for dir in sorted(root.glob(member)):
            if not (dir / "Cargo.toml").exists():
                continue
            m = load_toml(dir / "Cargo.toml")
            name = m["package"]["name"]
            crate = Crate(name, dir, m)
            for b in m.get("bin", []):
                crate.bins[b["name"]] = dir / b.get("path", f"src/bin/{b['name']}.rs")
            if (dir / "src/main.rs").exists() and not crate.bins:
                crate.bins[name] = dir / "src/main.rs"
            crates[name] = crate
    return manifest, crates


def linked(crate: Crate, root_manifest: dict, crates: dict[str, Crate], root: Path) -> tuple[list[Crate], set[str]]:
    """The crate and its path dependencies, recursively; and every aws-sdk-* crate they use."""
    ws_deps = root_manifest.get("workspace", {}).get("dependencies", {})
    seen: dict[str, Crate] = {}
    sdks: set[str] = set()
    stack = [crate]
    while stack:
        c = stack.pop()
        if c.name in seen:
            continue
        seen[c.name] = c
        for name, spec in c.manifest.get("dependencies", {}).items():
            base = c.dir
            if isinstance(spec, dict) and spec.get("workspace"):
                spec, base = ws_deps.get(name, {}), root
            package = spec.get("package", name) if isinstance(spec, dict) else name
            if package.startswith("aws-sdk-"):
                sdks.add(package)
            if isinstance(spec, dict) and "path" in spec:
                path = base / spec["path"]
                dep = next((d for d in crates.values() if d.dir.resolve() == path.resolve()), None)
                if dep is None:
                    raise SystemExit(f"check_iam: {c.name} depends on {path}, which is not a workspace member")
                stack.append(dep)
    return list(seen.values()), sdks


def sdk_operations(sdks: set[str], root: Path) -> dict[str, tuple[str, str]]:
    """operation name → (crate suffix, IAM prefix) for the given aws-sdk-* crates, read from
    the sources cargo keeps in its registry (the versions in Cargo.lock)."""
    lock = load_toml(root / "Cargo.lock")
    versions = defaultdict(set)
    for p in lock.get("package", []):
        if p["name"] in sdks:
            versions[p["name"]].add(p["version"])
    cargo_home = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))
    ops: dict[str, set[tuple[str, str]]] = defaultdict(set)
    missing = []
    for sdk in sorted(sdks):
        suffix = sdk.removeprefix("aws-sdk-")
        prefix = IAM_PREFIX.get(suffix, suffix)
        found = False
        for version in versions.get(sdk, ()):
            for src in cargo_home.glob(f"registry/src/*/{sdk}-{version}/src/operation"):
                found = True
                for op in src.iterdir():
                    if op.is_dir():
                        ops[op.name].add((suffix, prefix))
        if not found:
            missing.append(sdk)
    if missing:
        raise SetupError(
            f"the sources of {', '.join(missing)} are not in {cargo_home}/registry/src: run `cargo fetch` first"
        )
    return ops


class SetupError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Rust sources: comments and literals blanked, test code dropped, every fn with its body.


def blank(text: str) -> str:
    """The text with comments and the insides of string and char literals replaced by spaces
    (newlines kept, so offsets and line numbers stay)."""
    out = list(text)
    i, n = 0, len(text)

    def wipe(a: int, b: int) -> None:
        for k in range(a, min(b, n)):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            wipe(i, j)
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            wipe(i, j)
            i = j
        elif (m := re.match(r'b?r(#*)"', text[i : i + 300])) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            close = '"' + m.group(1)
            j = text.find(close, i + m.end())
            j = n if j < 0 else j + len(close)
            wipe(i + m.end(), j - len(close))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            wipe(i + 1, j)
            i = j + 1
        elif c == "'":
            # A char literal ('a', '\n', '\u{1F600}') or a lifetime ('a): only the former closes.
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i : i + 12])
            if m:
                wipe(i + 1, i + m.end() - 1)
                i += m.end()
            else:
                i += 1
        else:
            i += 1
    return "".join(out)


def matching(text: str, open_at: int) -> int:
    """The index just past the bracket that closes the one at `open_at`."""
    pairs = {"{": "}", "(": ")", "[": "]"}
    opener, closer = text[open_at], pairs[text[open_at]]
    depth = 0
    for k in range(open_at, len(text)):
        if text[k] == opener:
            depth += 1
        elif text[k] == closer:
            depth -= 1
            if depth == 0:
                return k + 1
    return len(text)


TEST_CFG = re.compile(r"#\s*\[\s*cfg\s*\(([^\]]*)\)\s*\]")


def is_test_cfg(condition: str) -> bool:
    return bool(re.search(r"\btest\b", condition)) and not re.search(r"not\s*\(\s*test\s*\)", condition)


def module_file(parent: Path, name: str) -> list[Path]:
    base = parent.parent if parent.name in ("lib.rs", "main.rs", "mod.rs") else parent.with_suffix("")
    return [base / f"{name}.rs", base / name]


def drop_tests(path: Path, code: str, excluded: set[Path]) -> str:
    """Blanks items under #[cfg(test)] (and `any(test, …)`), noting test-only module files."""
    out = list(code)
    for m in TEST_CFG.finditer(code):
        if not is_test_cfg(m.group(1)):
            continue
        rest = code[m.end() :]
        item = re.match(r"(\s*#\s*\[[^\]]*\])*\s*(pub(\s*\([^)]*\))?\s+)?", rest)
        at = m.end() + item.end()
        mod = re.match(r"mod\s+(\w+)\s*;", code[at:])
        if mod:
            excluded.update(module_file(path, mod.group(1)))
            end = at + mod.end()
        else:
            brace, semi = code.find("{", at), code.find(";", at)
            end = matching(code, brace) if brace >= 0 and (semi < 0 or brace < semi) else semi + 1
        for k in range(m.start(), end):
            if out[k] != "\n":
                out[k] = " "
    return "".join(out)


@dataclass
class Fn:
    name: str
    file: Path
    line: int
    is_method: bool
    body: str
    crate: str
    # Where it may be called from: files under `scope` (a directory), or `scope_file` itself;
    # None: anywhere (within what the crate rules below allow).
    scope: Path | None = None
    scope_file: Path | None = None
    # The trait whose definition or impl it is in, if any.
    trait: str | None = None


FN_RE = re.compile(r"\bfn\s+([A-Za-z_]\w*)")
SELF_RE = re.compile(r"^\s*(&\s*('\w+\s*)?)?(mut\s+)?self\b")
VIS_RE = re.compile(r"\bpub\s*(\(\s*(crate|super|self|in\s+[\w:]+)\s*\))?\s*((const|async|unsafe|extern\s*(\"[^\"]*\")?)\s+)*$")
# Blocks whose fns take the visibility of a trait: trait definitions and trait impls.
TRAIT_DEF_RE = re.compile(r"\btrait\s+([A-Za-z_]\w*)[^{;]*\{")
TRAIT_IMPL_RE = re.compile(r"\bimpl\b(?:\s*<[^{;]*?>)?\s*([\w:]+)(?:\s*<[^{;]*?>)?\s+for\b[^{;]*\{")


def module_dir(path: Path) -> Path:
    """The directory holding a module file's child modules."""
    return path.parent if path.name in ("lib.rs", "main.rs", "mod.rs") else path.with_suffix("")


def scope_of(path: Path, crate_src: Path, visibility: str | None) -> tuple[Path | None, Path | None]:
    """(directory, file) a fn of `path` with `visibility` may be called from."""
    if visibility is None or visibility == "self":  # private: its module and the module's children
        return module_dir(path), path
    if visibility == "super":
        parent = module_dir(path).parent
        if parent == crate_src or crate_src in parent.parents:
            return parent, parent.with_suffix(".rs")
        return crate_src, None
    if visibility == "crate" or visibility.startswith("in"):
        return crate_src, None
    return None, None  # pub


def parse_fns(path: Path, code: str, crate: Crate) -> tuple[list[Fn], set[str]]:
    """The fns of one file, and the traits it defines."""
    crate_src = crate.dir / "src"
    fns = []
    blocks = [(m.end() - 1, matching(code, m.end() - 1), m.group(1)) for m in TRAIT_DEF_RE.finditer(code)]
    blocks += [
        (m.end() - 1, matching(code, m.end() - 1), m.group(1).split("::")[-1]) for m in TRAIT_IMPL_RE.finditer(code)
    ]
    for m in FN_RE.finditer(code):
        paren = code.find("(", m.end())
        if paren < 0:
            continue
        params_end = matching(code, paren)
        is_method = bool(SELF_RE.match(code[paren + 1 : params_end]))
        brace, semi = code.find("{", params_end), code.find(";", params_end)
        if brace < 0 or (0 <= semi < brace):
            continue  # a declaration without a body
        body = code[brace : matching(code, brace)]
        line_start = code.rfind("\n", 0, m.start()) + 1
        vis = VIS_RE.search(code[line_start : m.start()])
        # The innermost trait block around it, if any.
        trait = next((t for a, b, t in sorted(blocks, key=lambda x: x[0], reverse=True) if a < m.start() < b), None)
        if trait:
            scope = (None, None)
        elif vis:
            scope = scope_of(path, crate_src, vis.group(2).split()[0] if vis.group(2) else "pub")
        else:
            scope = scope_of(path, crate_src, None)
        fns.append(Fn(m.group(1), path, code.count("\n", 0, m.start()) + 1, is_method, body, crate.name, *scope, trait))
    return fns, {m.group(1) for m in TRAIT_DEF_RE.finditer(code)}


METHOD_REF = re.compile(r"\.\s*([A-Za-z_]\w*)\s*(?=\(|::\s*<)")
PATH_REF = re.compile(r"::\s*([A-Za-z_]\w*)")


def references(body: str) -> tuple[set[str], set[str], set[str]]:
    methods = set(METHOD_REF.findall(body))
    paths = set(PATH_REF.findall(body))
    bare = set()
    for m in re.finditer(r"\b([A-Za-z_]\w*)\b", body):
        before = body[: m.start()].rstrip()
        if before.endswith(".") or before.endswith("::"):
            continue
        bare.add(m.group(1))
    return methods, paths, bare


@dataclass
class Code:
    fns: list[Fn]
    consts: dict[str, str]
    sdk_files: dict[Path, set[str]]  # file → aws-sdk crate suffixes it names
    sees: dict[str, set[str]]  # crate → the crates it can name (itself and its dependencies)
    traits: dict[str, set[str]]  # trait → the crates defining one of that name

    def callable(self, callee: Fn, caller: Fn) -> bool:
        """Whether `caller` can call `callee`: Rust's visibility, and a crate can only call
        into crates it depends on, or, for a trait's methods, whose trait it can name
        (generic code calls the impls of crates above it through the trait)."""
        if callee.trait is not None:
            defined = self.traits.get(callee.trait)
            # A trait from outside the workspace (std, axum, the SDK) is called by its crate.
            return defined is None or bool(defined & self.sees[caller.crate])
        if callee.crate not in self.sees[caller.crate]:
            return False
        if callee.scope is None:
            return True
        return caller.file == callee.scope_file or callee.scope in caller.file.parents


def read_crates(crates: list[Crate], root_manifest: dict, all_crates: dict[str, Crate], root: Path) -> Code:
    fns: list[Fn] = []
    consts: dict[str, str] = {}
    sdk_files: dict[Path, set[str]] = {}
    traits: dict[str, set[str]] = defaultdict(set)
    excluded: set[Path] = set()
    files = sorted(((p, c) for c in crates for p in (c.dir / "src").rglob("*.rs")), key=lambda pc: pc[0])
    blanked = {}
    for path, _crate in files:
        raw = path.read_text()
        for name, value in re.findall(r'\bconst\s+(\w+)\s*:\s*&\s*(?:\'static\s+)?str\s*=\s*"([^"]*)"', raw):
            consts[name] = value
        sdk_files[path] = set(re.findall(r"\baws_sdk_(\w+?)::", raw))
        blanked[path] = drop_tests(path, blank(raw), excluded)
    for path, crate in files:
        if any(path == e or e in path.parents for e in excluded):
            continue
        found, defined = parse_fns(path, blanked[path], crate)
        fns.extend(found)
        for t in defined:
            traits[t].add(crate.name)
    sees = {c.name: {d.name for d in linked(c, root_manifest, all_crates, root)[0]} for c in crates}
    return Code(fns, consts, sdk_files, sees, dict(traits))


def reachable(code: Code, roots: list[Fn]) -> dict[int, tuple[Fn, Fn | None]]:
    """Every fn reachable from `roots`, by id, with the fn it was first reached from."""
    by_name: dict[str, list[Fn]] = defaultdict(list)
    for f in code.fns:
        by_name[f.name].append(f)
    seen: dict[int, tuple[Fn, Fn | None]] = {}
    stack: list[tuple[Fn, Fn | None]] = [(r, None) for r in roots]
    while stack:
        f, parent = stack.pop()
        if id(f) in seen:
            continue
        seen[id(f)] = (f, parent)
        methods, paths, bare = references(f.body)
        targets = [g for name in methods for g in by_name.get(name, ()) if g.is_method]
        targets += [g for name in paths for g in by_name.get(name, ())]
        targets += [g for name in bare for g in by_name.get(name, ()) if not g.is_method]
        stack.extend((g, f) for g in targets if id(g) not in seen and code.callable(g, f))
    return seen


def path_to(reached: dict[int, tuple[Fn, Fn | None]], f: Fn, root: Path) -> str:
    chain = []
    node: Fn | None = f
    while node is not None and len(chain) < 40:
        chain.append(f"{node.file.relative_to(root)}::{node.name}")
        node = reached[id(node)][1]
    return " <- ".join(chain)


# ---------------------------------------------------------------------------------------------
# The calls a function's reachable code makes, as IAM actions.


@dataclass
class Call:
    action: str
    operation: str
    fn: Fn
    line: int
    index: str | None = None  # for dynamodb:Query/Scan: the index name, or "" for the table
    via: str | None = None  # for a transaction's member actions: where the members are built

    def where(self, root: Path) -> str:
        via = f", {self.via}" if self.via else ""
        return f"{self.fn.file.relative_to(root)}:{self.line} ({self.fn.name}, .{self.operation}(){via})"

    def site(self, root: Path) -> str:
        return f"{self.fn.file.relative_to(root)}::{self.fn.name}"


def calls_in(fns: list[Fn], code: Code, ops: dict[str, set[tuple[str, str]]]) -> list[Call]:
    calls: list[Call] = []
    op_re = re.compile(r"\.\s*(" + "|".join(sorted(map(re.escape, ops), key=len, reverse=True)) + r")\s*\(\s*\)") if ops else None
    if op_re is None:
        return calls
    # The members a transaction can carry: those built in any reachable fn.
    members: dict[str, set[str]] = defaultdict(set)
    for f in fns:
        for m in TRANSACT_MEMBER_RE.findall(f.body):
            members[TRANSACT_MEMBERS[m]].add(f"{f.file.relative_to(ROOT)}::{f.name}")
    for f in fns:
        for m in op_re.finditer(f.body):
            op = m.group(1)
            candidates = ops[op]
            named = {c for c in candidates if c[0] in code.sdk_files.get(f.file, set())}
            line = f.line + f.body.count("\n", 0, m.start())
            for _suffix, prefix in sorted(named or candidates):
                special = SPECIAL_ACTIONS.get((prefix, op), [])
                via = {}
                if special is None:  # a transaction: its members' actions
                    actions = sorted(members) or ["dynamodb:UpdateItem"]
                    via = {a: f"members built in {', '.join(sorted(members[a]))}" for a in members}
                elif special:
                    actions = special
                else:
                    actions = [f"{prefix}:{''.join(w.capitalize() for w in op.split('_'))}"]
                index = None
                if (prefix, op) in (("dynamodb", "query"), ("dynamodb", "scan")):
                    # The builder chain up to the end of its statement names the index, if any.
                    end = f.body.find(";", m.end())
                    chain = f.body[m.end() : end if end >= 0 else len(f.body)]
                    named_index = re.search(r"\.\s*index_name\s*\(\s*([A-Za-z_][\w:]*|\"[^\"]*\")\s*\)", chain)
                    if named_index:
                        token = named_index.group(1).split("::")[-1]
                        index = code.consts.get(token, f"<{token}>")
                    else:
                        index = ""
                calls.extend(Call(a, op, f, line, index if a in INDEX_ACTIONS else None, via.get(a)) for a in actions)
    return calls


# ---------------------------------------------------------------------------------------------
# The template's grants.


@dataclass
class Grant:
    action: str
    resources: list[str]


def grants_of(policies, problems: list[str], fn_name: str) -> list[Grant]:
    out: list[Grant] = []

    def walk(policy) -> None:
        if isinstance(policy, dict) and "Fn::If" in policy:
            for branch in policy["Fn::If"][1:]:
                walk(branch)
        elif isinstance(policy, dict) and policy.get("Ref") == "AWS::NoValue":
            return
        elif isinstance(policy, dict) and "Statement" in policy:
            statements = policy["Statement"]
            for st in statements if isinstance(statements, list) else [statements]:
                if isinstance(st, dict) and "Fn::If" in st:
                    walk({"Statement": [b for b in st["Fn::If"][1:] if isinstance(b, dict)]})
                    continue
                if st.get("Effect") != "Allow":
                    continue
                if "NotAction" in st or "NotResource" in st:
                    problems.append(f"{fn_name}: NotAction/NotResource cannot be checked; list actions and resources")
                actions = st.get("Action", [])
                resources = st.get("Resource", [])
                resources = resources if isinstance(resources, list) else [resources]
                for a in actions if isinstance(actions, list) else [actions]:
                    if "*" in a:
                        problems.append(f"{fn_name}: wildcard action {a!r} cannot be checked against the code; list the actions")
                    out.append(Grant(a, [render(r) for r in resources]))
        else:
            problems.append(
                f"{fn_name}: policy {policy!r} (a managed policy or SAM policy template) cannot be checked against "
                "the code; write its statements"
            )

    for p in policies or []:
        walk(p)
    return out


def check_function(logical: str, resource: dict, template: dict, ws: tuple, root: Path, verbose: bool, why: bool) -> list[str]:
    problems: list[str] = []
    props = resource.get("Properties", {})
    meta = resource.get("Metadata", {}) or {}
    binary = (meta.get("BuildProperties") or {}).get("Binary")
    if not binary:
        return [f"{logical}: no Metadata.BuildProperties.Binary, so its code cannot be found"]
    if "Role" in props:
        return [f"{logical}: a Role of its own cannot be checked; grant through Policies"]
    root_manifest, crates = ws
    crate = next((c for c in crates.values() if binary in c.bins), None)
    if crate is None:
        return [f"{logical}: no workspace crate builds a binary named {binary!r}"]
    deps, sdks = linked(crate, root_manifest, crates, root)
    ops = sdk_operations(sdks, root)
    code = read_crates(deps, root_manifest, crates, root)
    main = crate.bins[binary].resolve()
    roots = [f for f in code.fns if f.file.resolve() == main]
    if not roots:
        return [f"{logical}: found no fn in {main.relative_to(root)}"]
    graph = reachable(code, roots)
    reached = [f for f, _ in graph.values()]
    calls = calls_in(reached, code, ops)

    # Calls declared as never made by this function.
    not_called = ((meta.get("IamCheck") or {}).get("NotCalled") or {})
    used_declarations = set()
    kept = []
    for c in calls:
        if c.site(root) in not_called:
            used_declarations.add(c.site(root))
        else:
            kept.append(c)
    for site in not_called:
        if site not in used_declarations:
            problems.append(f"{logical}: Metadata.IamCheck.NotCalled names {site}, which makes no AWS call this function reaches: remove it")
    calls = kept

    grants = grants_of(props.get("Policies"), problems, logical)
    granted = {g.action for g in grants}
    needed: dict[str, list[Call]] = defaultdict(list)
    for c in calls:
        needed[c.action].append(c)

    unused = sorted(granted - set(needed))
    for a in unused:
        problems.append(f"{logical} ({binary}): {a} is granted but no code the function can run calls it: remove it")
    for a in sorted(set(needed) - granted):
        sites = "; ".join(sorted({c.where(root) for c in needed[a]}))
        problems.append(f"{logical} ({binary}): {a} is needed but not granted, by {sites}")

    # Tables and indexes, for the actions that take index ARNs.
    tables = {k for k, v in template.get("Resources", {}).items() if v.get("Type") == "AWS::DynamoDB::Table"}
    for action in sorted(INDEX_ACTIONS & granted):
        wanted = {c.index for c in needed.get(action, []) if c.index is not None}
        on_table, on_index = False, set()
        for g in (g for g in grants if g.action == action):
            for r in g.resources:
                m = re.fullmatch(r"\$\{(\w+)\.Arn\}/index/(.+)", r)
                if m and m.group(1) in tables:
                    if "*" in m.group(2):
                        problems.append(f"{logical}: {action} on {r}: grant each index by name")
                    else:
                        on_index.add(m.group(2))
                elif r.removesuffix(".Arn") in tables:
                    on_table = True
        if on_table and "" not in wanted:
            problems.append(f"{logical}: {action} is granted on the table itself, but the code only queries indexes ({', '.join(sorted(wanted - {''}))})")
        if "" in wanted and not on_table:
            problems.append(f"{logical}: the code runs {action} on the table itself, which is not granted")
        for name in sorted(on_index - wanted):
            problems.append(f"{logical}: {action} is granted on index {name}, which the code does not query: remove it")
        for name in sorted(wanted - on_index - {""}):
            problems.append(f"{logical}: the code runs {action} on index {name}, which is not granted")
    for g in grants:
        for r in g.resources:
            if "/index/" in r and g.action not in INDEX_ACTIONS:
                problems.append(f"{logical}: {g.action} is granted on index {r}; only Query and Scan read indexes")

    if verbose or problems:
        print(f"{logical} ({binary}): crates {', '.join(sorted(d.name for d in deps))}; {len(reached)} fns reachable")
        for a in sorted(needed):
            print(f"  {a}: {'; '.join(sorted({c.where(root) for c in needed[a]}))}")
            if why:
                for c in needed[a]:
                    print(f"      {path_to(graph, c.fn, root)}")
    if not problems:
        indexes = sorted({c.index for c in calls if c.index})
        print(
            f"check_iam: {logical} ({binary}) grants {len(granted)} actions, each one called; every call granted"
            + (f"; indexes {', '.join(indexes)}" if indexes else "")
        )
    return problems


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("-")]
    why = "--why" in argv
    verbose = "-v" in argv or "--verbose" in argv or why
    template_path = Path(args[0]) if args else ROOT / "template.yaml"
    template = yaml.load(template_path.read_text(), Loader=cfn_loader())
    try:
        ws = workspace_crates(ROOT)
        problems: list[str] = []
        functions = {k: v for k, v in template.get("Resources", {}).items() if v.get("Type") == "AWS::Serverless::Function"}
        if not functions:
            print(f"check_iam: no AWS::Serverless::Function in {template_path}", file=sys.stderr)
            return 2
        for logical, resource in functions.items():
            problems.extend(check_function(logical, resource, template, ws, ROOT, verbose, why))
    except SetupError as e:
        print(f"check_iam: {e}", file=sys.stderr)
        return 2
    if problems:
        print(f"\ncheck_iam: {template_path.name}'s IAM grants do not match the code:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
