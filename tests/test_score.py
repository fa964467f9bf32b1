"""`lstm-edge score` with the local engine: every input format, the output layout, and bad input (exit 2, nothing written)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from lstm_edge.cli import main
from lstm_edge.runtimes import open_runner
from lstm_edge.score import ScoreConfig, score


def _x(n=40, t=12, f=3, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, t, f)).astype(np.float32)


def _rows(table, col) -> np.ndarray:
    return np.array(table.column(col).to_pylist(), np.float32)


def _invoke(*args):
    return CliRunner().invoke(main, ["score", *map(str, args)])


def test_npy_matches_runner_batch_by_batch(small_bundle, tmp_path):
    x = _x()
    np.save(tmp_path / "x.npy", x)
    r = _invoke(small_bundle, "--input", tmp_path / "x.npy", "--output", tmp_path / "p.parquet",
                "--batch-size", 16, "--outputs", "y,hn,cn")  # fmt: skip
    assert r.exit_code == 0, r.output
    t = pq.read_table(tmp_path / "p.parquet")
    assert t.column_names == ["id", "y", "hn", "cn"] and t.column("id").to_pylist() == list(range(40))
    with open_runner(small_bundle) as runner:
        parts = [runner.run(x[i : i + 16]) for i in range(0, 40, 16)]  # the same batches: bit-identical
    assert np.array_equal(_rows(t, "y"), np.concatenate([p[0] for p in parts]))
    hn = np.concatenate([p[1][0] for p in parts], axis=1).transpose(1, 0, 2)  # [L, N, H] → per row [L, H]
    assert np.array_equal(_rows(t, "hn"), hn)
    assert np.array_equal(_rows(t, "cn"), np.concatenate([p[1][1] for p in parts], axis=1).transpose(1, 0, 2))


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed], ids=["stored", "compressed"])
def test_npz_with_ids(small_bundle, tmp_path, save):
    x = _x(n=25)
    save(tmp_path / "x.npz", x=x, id=np.arange(25) * 7)
    out = score(small_bundle, tmp_path / "x.npz", tmp_path / "p.parquet", ScoreConfig(batch_size=10, progress=False))
    t = pq.read_table(out.output)
    assert out.rows == 25 and t.column("id").to_pylist() == [7 * i for i in range(25)]
    with open_runner(small_bundle) as runner:
        want = np.concatenate([runner.run(x[i : i + 10])[0] for i in range(0, 25, 10)])
    assert np.array_equal(_rows(t, "y"), want)


def test_parquet_folder_variable_lengths(small_bundle, tmp_path):
    """Rows of different lengths: each runs at its own length, exactly as a batch of its equal-length peers."""
    x = _x(n=30, t=9)
    lengths = [3 + i % 4 for i in range(30)]
    folder = tmp_path / "data"
    folder.mkdir()
    for part in range(3):
        rows = range(10 * part, 10 * part + 10)
        pq.write_table(
            pa.table({"id": [f"s{i}" for i in rows], "x": [x[i, : lengths[i]].tolist() for i in rows]}),
            folder / f"part{part}.parquet",
        )
    out = score(small_bundle, folder, tmp_path / "p.parquet", ScoreConfig(batch_size=10, progress=False))
    t = pq.read_table(out.output)
    assert sorted(t.column("id").to_pylist()) == sorted(f"s{i}" for i in range(30))
    got = dict(zip(t.column("id").to_pylist(), _rows(t, "y"), strict=True))
    with open_runner(small_bundle) as runner:
        for part in range(3):
            for T in set(lengths):
                idx = [i for i in range(10 * part, 10 * part + 10) if lengths[i] == T]
                if idx:
                    y = runner.run(x[idx, :T])[0]
                    assert all(np.array_equal(got[f"s{i}"], y[j]) for j, i in enumerate(idx))


def _bad(tmp_path, make, bundle, *extra):
    src = make(tmp_path)
    out = tmp_path / "out" / "p.parquet"
    r = _invoke(bundle, "--input", src, "--output", out, *extra)
    assert r.exit_code == 2, r.output
    last = r.output.strip().splitlines()[-1]  # the progress bar (stderr) may come first
    assert last.startswith("error: ") and "Traceback" not in r.output, r.output
    leftovers = list((tmp_path / "out").iterdir()) if (tmp_path / "out").exists() else []
    assert leftovers == [], leftovers  # nothing half-written, no temporary sibling either
    return last


def _save(name, arr):
    def make(d):
        np.save(d / name, arr)
        return d / name

    return make


def _parquet(table):
    def make(d):
        pq.write_table(table, d / "x.parquet")
        return d / "x.parquet"

    return make


@pytest.mark.parametrize(
    "make, extra, says",
    [
        (lambda d: d / "missing.npy", (), "input not found"),
        (_save("x.npy", np.zeros((4, 3), np.float32)), (), "[sequences, steps, features]"),
        (_save("x.npy", np.zeros((4, 5, 2), np.float32)), (), "2 features but the model takes 3"),
        (_save("x.npy", np.zeros((4, 5, 3), np.int32)), (), "dtype int32"),
        (_parquet(pa.table({"x": [[[1.0, 2.0, 3.0]]]})), (), "no 'id' column"),
        (_parquet(pa.table({"id": [1], "x": [[["a", "b", "c"]]]})), (), "x values have type string"),
        (_parquet(pa.table({"id": [1, 2], "x": [[[1.0, 2.0, 3.0]], [[1.0, 2.0]]]})), (), "steps have [2, 3] features"),
        (lambda d: (d / "x.csv").write_text("1,2,3\n") and d / "x.csv", (), "unknown input format"),
        (_save("x.npy", _x(n=4)), ("--outputs", "y,zz"), "--outputs y,zz"),
        (_save("x.npy", _x(n=4)), ("--batch-size", 0), "--batch-size 0"),
        (_save("x.npy", _x(n=4)), ("--ray-address", "auto"), "--ray-address needs --engine ray"),
    ],
    ids=["missing", "rank", "features", "int", "no-id", "strings", "ragged-steps", "csv", "outputs", "batch", "addr"],
)
def test_bad_input_one_line_exit_2(small_bundle, tmp_path, make, extra, says):
    assert says in _bad(tmp_path, make, small_bundle, *extra)


def test_failure_mid_run_leaves_nothing(small_bundle, tmp_path):
    """A NaN in the third batch: two batches were already written to the staged file, which must vanish."""
    x = _x(n=50)
    x[45, 3, 1] = np.nan
    msg = _bad(tmp_path, _save("x.npy", x), small_bundle, "--batch-size", 20)
    assert "nan" in msg.lower()


def test_output_is_replaced_only_when_score_wrote_it(small_bundle, tmp_path):
    """A re-run replaces score's own output; a user's Parquet (or any file) at --output is refused, not overwritten;
    a feature-count mismatch is refused before any engine starts (Ray printed three tracebacks first)."""
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).random((5, 4, 3), dtype=np.float32))
    out = tmp_path / "pred.parquet"
    args = ["score", str(small_bundle), "--input", str(x), "--output", str(out)]
    assert CliRunner().invoke(main, args).exit_code == 0
    assert CliRunner().invoke(main, args).exit_code == 0  # ours: replaced
    theirs = tmp_path / "notes.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), theirs)
    res = CliRunner().invoke(main, ["score", str(small_bundle), "--input", str(x), "--output", str(theirs)])
    assert res.exit_code == 2 and "not written by lstm-edge score" in res.output
    assert pq.read_table(theirs).column_names == ["a"]
    res = CliRunner().invoke(main, [*args[:-1], str(small_bundle), "--engine", "ray"])  # a bundle is ours, not score's
    assert res.exit_code == 2 and "not an lstm-edge score folder" in res.output, res.output
    np.save(x, np.zeros((5, 4, 2), np.float32))
    for engine in ("local", "ray"):
        res = CliRunner().invoke(main, [*args[:-1], str(tmp_path / f"o-{engine}.parquet"), "--engine", engine])
        assert res.exit_code == 2 and res.output.count("\n") == 1 and "the model takes 3" in res.output, res.output
