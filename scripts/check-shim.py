#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""check-shim.py: the C shim's API as drbd_shim.h declares it and as the
Rust glue declares it (kernel_glue/shim.rs, the extern block) and defines
the callbacks (`extern "C" fn rdrbd_rs_*` in kernel_glue/) must agree,
function by function: the same functions, the same parameter and return
types. A mismatch would compile and link, and be undefined behaviour at
run time. Run by `make module` before kbuild, and as a host test.

Types are compared after mapping C to Rust spellings (`struct bio *` is
`*mut bio`, `const u8 *` is `*const u8`, `unsigned int` is `c_uint`, ...);
parameter names do not matter. Exit status 1 and one line per mismatch.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DRV = os.path.join(ROOT, "drivers", "block", "drbd")

C_SCALARS = {
    "void": "()", "int": "c_int", "unsigned int": "c_uint", "long": "c_long",
    "unsigned long": "c_ulong", "unsigned long long": "c_ulonglong", "char": "c_char",
    "bool": "bool", "size_t": "usize", "u8": "u8", "u16": "u16", "u32": "u32", "u64": "u64",
    "s32": "i32", "s64": "i64",
}
RUST_ALIASES = {"i32": "c_int", "core::ffi::c_int": "c_int", "()": "()"}


def c_type(text):
    """A C type as the Rust spelling it must have."""
    text = " ".join(text.replace("*", " * ").split())
    stars = text.count("*")
    words = [w for w in text.split() if w != "*"]
    const = "const" in words
    words = [w for w in words if w not in ("const", "struct")]
    base = " ".join(words)
    base = C_SCALARS.get(base, base)
    if base == "()" and stars:
        base = "c_void"
    for level in range(stars):
        # `const` binds to the pointee (the innermost level) in this API.
        base = ("*const " if const and level == 0 else "*mut ") + base
    return base


def rust_type(text):
    text = " ".join(text.split())
    text = re.sub(r"\b(?:kernel::)?(?:bindings|ffi|core::ffi)::", "", text)
    return RUST_ALIASES.get(text, text)


def split_params(params):
    params = params.strip()
    if params in ("", "void"):
        return []
    return [p.strip() for p in params.split(",")]


def c_declarations(path):
    src = re.sub(r"/\*.*?\*/", "", open(path).read(), flags=re.S)
    decls = {}
    for m in re.finditer(r"^([\w\s\*]+?)\b(rdrbd_\w+)\s*\(([^;{]*?)\)\s*;", src, re.M):
        ret, name, params = m.groups()
        types = []
        for p in split_params(params):
            # Drop the parameter name (the last identifier, unless only a type).
            p = re.sub(r"\b\w+\s*$", "", p) if re.search(r"[\w\*]\s+\w+\s*$", p) or "*" in p else p
            types.append(c_type(p))
        decls[name] = (c_type(ret), types)
    return decls


def rust_signature(params, ret):
    types = []
    for p in split_params(params):
        if ":" in p:
            types.append(rust_type(p.split(":", 1)[1]))
    return (rust_type(ret) if ret else "()", types)


def rust_declarations(drv):
    decls = {}
    shim = open(os.path.join(drv, "kernel_glue", "shim.rs")).read()
    for m in re.finditer(r"fn (rdrbd_\w+)\s*\(([^)]*)\)\s*(?:->\s*([^;]+?))?\s*;", shim, re.S):
        name, params, ret = m.groups()
        decls[name] = rust_signature(params, ret)
    glue = os.path.join(drv, "kernel_glue")
    for f in sorted(os.listdir(glue)):
        src = open(os.path.join(glue, f)).read()
        for m in re.finditer(r'extern "C" fn (rdrbd_rs_\w+)\s*\(([^)]*)\)\s*(?:->\s*([^{]+?))?\s*\{', src, re.S):
            name, params, ret = m.groups()
            decls[name] = rust_signature(params, ret)
    return decls


def check(drv, quiet=False):
    c = c_declarations(os.path.join(drv, "drbd_shim.h"))
    rust = rust_declarations(drv)
    problems = []
    for name in sorted(set(c) | set(rust)):
        if name not in c:
            problems.append(f"{name}: declared in Rust, not in drbd_shim.h")
        elif name not in rust:
            problems.append(f"{name}: in drbd_shim.h, not declared or defined in Rust")
        elif c[name] != rust[name]:
            problems.append(f"{name}: C {c[name]} != Rust {rust[name]}")
    if not quiet:
        for p in problems:
            print(f"check-shim: {p}")
        if not problems:
            print(f"check-shim: {len(c)} functions agree")
    return problems


# Mutations of the real files the check must catch: (file, old, new).
MUTATIONS = [
    ("kernel_glue/shim.rs", "fn rdrbd_bio_size(bio: *mut bio) -> c_uint", "fn rdrbd_bio_size(bio: *mut bio) -> u64"),
    ("kernel_glue/shim.rs", "rdrbd_sock_set_buffers(sock: *mut socket, snd: u32, rcv: u32)",
     "rdrbd_sock_set_buffers(sock: *mut socket, snd: u32)"),
    ("drbd_shim.h", "int rdrbd_bio_copy_in(struct bio *bio, const void *data, unsigned int len);",
     "int rdrbd_bio_copy_in(struct bio *bio, void *data, unsigned int len);"),
    ("drbd_shim.h", "void rdrbd_bio_get(struct bio *bio);\n", ""),
    ("kernel_glue/block.rs", "rdrbd_rs_open(private: *mut c_void, write: bool)", "rdrbd_rs_open(private: *mut c_void, write: u8)"),
]


def self_test():
    """The real files agree; each mutation is reported."""
    import shutil
    import tempfile
    if check(DRV, quiet=True):
        print("check-shim self-test: the real files disagree")
        return 1
    bad = 0
    for rel, old, new in MUTATIONS:
        with tempfile.TemporaryDirectory() as tmp:
            drv = os.path.join(tmp, "drbd")
            shutil.copytree(DRV, drv, ignore=shutil.ignore_patterns("*.o", "*.ko", "*.cmd"))
            path = os.path.join(drv, rel)
            text = open(path).read()
            if old not in text:
                print(f"check-shim self-test: {rel} no longer has {old!r}")
                bad += 1
                continue
            open(path, "w").write(text.replace(old, new, 1))
            if not check(drv, quiet=True):
                print(f"check-shim self-test: missed {rel}: {old!r} -> {new!r}")
                bad += 1
    print(f"check-shim self-test: {len(MUTATIONS) - bad} of {len(MUTATIONS)} mutations caught")
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        sys.exit(self_test())
    sys.exit(1 if check(DRV) else 0)
