"""`lstm-edge bundle --target c`: the bundle as a dependency-free C99 project (lstm_edge.codegen writes it: NAME.h,
NAME.c, NAME_check.c with the golden cases, a Makefile, Cortex-M4 start-up files), plus a README and the slim manifest
that marks the folder as lstm-edge's. `lstm-edge codegen` writes the same C with more options (--prefix, int8's task
metric)."""

from __future__ import annotations

from lstm_edge.targets.common import TargetJob, write_embed_manifest

README = """# {name} ({variant}) as C99

No malloc, no mutable globals, no library (not even libm for int8). `{prefix}.h` declares the API; `{prefix}_check.c`
runs the bundle's golden cases against `{prefix}.c` and prints PASS or FAIL.

```bash
make host    # build and run the check program with the host's C compiler
make qemu    # the same on a Cortex-M4 under qemu (arm-none-eabi-gcc, qemu-system-arm)
```
"""


def write_c(job: TargetJob) -> None:
    """Fill job.stage with lstm_edge.codegen's C project for the variant (precision fp32 or int8), README.md and
    manifest.json. Raises LstmEdgeError for a model the C cannot express (codegen.prepare says which)."""
    # deferred: lstm_edge.codegen imports torch (through lstm_edge.c_int8_sim)
    from lstm_edge.codegen import CodegenConfig, prepare, render

    prep = prepare(job.bundle.root, CodegenConfig(precision=job.variant, verify_hash=job.verify_hash))
    for name, text in render(prep, job.variant).items():
        (job.stage / name).write_text(text)
    prefix = prep["prefix"]
    write_embed_manifest(job, "c", f"{prefix}.c", golden=f"{prefix}_check.c")
    readme = README.format(name=job.bundle.name, variant=job.variant, prefix=prefix)
    (job.stage / "README.md").write_text(readme)
