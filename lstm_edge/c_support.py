"""What the c runtime needs to open a cached build, without the generator: whether the C can express a model (its
form's refusals), the bundle's identity, and the generator's digest — no torch, no onnx. And how the C is compiled
(the compiler, its flags, the compile step), shared by the c runtime and quantize (export/quant_c.py measures the
int8 C it is recording a bound for with the library the c runtime would build, flag for flag).

lstm_edge.codegen (which writes the C) imports torch for the int8 simulation and the task metric; the c runner
opening a library it built before needs none of that, only the cache key (bundle × generator × compiler × flags
× machine) and the form check. Both live here; codegen.weights re-exports the form check for its callers.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from lstm_edge.config import ModelConfig
from lstm_edge.errors import LstmEdgeError
from lstm_edge.formats import MANIFEST
from lstm_edge.forms import refusals

SUPPORTED = (
    "the C takes unidirectional, batch-first LSTMs and GRUs with biases and a Linear head, on float inputs or token "
    "ids, of full length"
)
# The modules whose source shapes the generated C: the codegen package and the int8 scheme it follows.
GENERATOR_SOURCES = ("codegen", "c_int8_sim.py")
# Always: ISO C99, position-independent, every warning an error (the generated C must compile clean), and no fused
# multiply-add (the int8 C equals its Python simulation only when each float operation is rounded on its own).
# -fno-trapping-math (no FP traps observed: results unchanged) lets the compilers if-convert the gate math and vectorize it.
BASE_FLAGS = (
    "-std=c99",
    "-shared",
    "-fPIC",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-pedantic",
    "-ffp-contract=off",
    "-fno-trapping-math",
)
# Speed: -O3 lets gcc/clang vectorize the gate loops; -march=native uses this CPU's widest vectors (the library is
# cached per machine, keyed by the flags and the CPU model).
DEFAULT_CFLAGS = ("-O3", "-march=native")
# Per precision, after BASE_FLAGS (the later -ffp-contract wins). fp32 lets the compiler fuse multiply-adds where
# the CPU has them (-march=native: FMA on both x86 CPUs met, AVX2 EPYC and AVX-512 Xeon): fp32 is judged within fp32
# bounds, not bit for bit, and every function is shared by NAME_step, NAME_run and NAME_run_batch, so they still
# agree bit for bit with each other. Measured in one interleaved run on the AMD EPYC (CPU-time medians): the adding
# model's B1xT100 run 0.90x the time of -ffp-contract=off. The int8 C keeps it off: it equals its Python simulation
# only when each float operation is rounded on its own.
PRECISION_FLAGS = {"fp32": ("-ffp-contract=fast",), "int8": ()}


def refuse(problem: str) -> LstmEdgeError:
    """The one-line refusal of a model the C cannot express, naming `problem` and the fix. Raises nothing."""
    return LstmEdgeError(
        f"codegen (and the c runtime) cannot write this model as C: {problem}",
        f"run it on another runtime (--provider cpu) instead; {SUPPORTED}",
    )


def unsupported(config: ModelConfig) -> list[str]:
    """What in a model's form (its ModelSpec) the C cannot express, in the words a user knows; empty when codegen
    can write it. The C steps one unidirectional LSTM or GRU cell stack forward, one batch row and one float sample at a
    time, into a Linear head."""
    return refusals(config, "c")  # one reason per form, in lstm_edge.forms' words and order


def check_supported(config: ModelConfig) -> None:
    """Raise LstmEdgeError, one line naming every unsupported trait (unsupported()) and the fix, when the C cannot
    express this model; return None when it can."""
    why = unsupported(config)
    if why:
        raise refuse("; ".join(why))


def bundle_sha256(bundle) -> str:
    """The bundle's identity: sha256 of manifest.json, which itself records every artifact's sha256. Raises
    OSError where the manifest cannot be read."""
    return hashlib.sha256((bundle.root / MANIFEST).read_bytes()).hexdigest()


def generator_digest() -> str:
    """sha256 over the source of every module that shapes the generated C (the lstm_edge.codegen package's modules
    and lstm_edge.c_int8_sim), read from disk without importing them: it changes whenever the generator does, so a
    cached build never outlives the code that wrote it (the c runtime keys its library cache by it). Raises
    OSError where a source file cannot be read."""
    here = Path(__file__).parent
    h = hashlib.sha256()
    for path in [*sorted((here / GENERATOR_SOURCES[0]).glob("*.py")), here / GENERATOR_SOURCES[1]]:
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def compiler() -> str:
    """$CC, else cc, gcc or clang on PATH.

    Raises:
        LstmEdgeError: none of them is found.
    """
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    raise LstmEdgeError("no C compiler found (cc, gcc or clang)", "install one (Debian: apt-get install gcc) or set CC")


def compile_library(
    files: dict[str, str], out: Path, precision: str, cflags: tuple[str, ...] = DEFAULT_CFLAGS
) -> list[str]:
    """Compile generated C into the shared library `out`, placed atomically (a temp sibling, then os.replace).

    files: {file name: text}, exactly one ending in .c (compiled) and its headers. precision: "fp32" | "int8"
    (PRECISION_FLAGS). Returns the compiler command run (compiler and flags, for what a report records).

    Raises:
        LstmEdgeError: no C compiler, a compile over 30 minutes, or a compiler error on the generated code.
    """
    cc = compiler()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        for name, text in files.items():
            (Path(tmp) / name).write_text(text)
        (src,) = (str(Path(tmp) / n) for n in files if n.endswith(".c"))
        built = Path(tmp) / out.name
        cmd = [cc, *BASE_FLAGS, *PRECISION_FLAGS[precision], *cflags, "-o", str(built), src]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        except subprocess.TimeoutExpired as e:
            raise LstmEdgeError("compiling the generated C took over 30 minutes", "try --variant int8") from e
        if done.returncode != 0:
            first = (done.stderr.strip().splitlines() or ["(no output)"])[0][:300]
            raise LstmEdgeError(f"the C compiler failed on the generated code: {first}", f"report it; command: {cmd}")
        os.replace(built, out)  # atomic: a concurrent builder's identical library may win, either is correct
    return cmd
