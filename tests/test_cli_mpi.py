"""The homology CLI under real MPI (mpiexec from the PyPI mpich wheel)."""

import pytest
from ase.io import write

from topoamorph.formats.diagrams import read_diagrams

from conftest import random_cell, run, venv_tool

pytestmark = pytest.mark.mpi


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    d = tmp_path_factory.mktemp("frames")
    from ase.calculators.singlepoint import SinglePointCalculator

    def make(name, specs):
        images = []
        for i, (n, rho) in enumerate(specs):
            a = random_cell(n, rho, seed=hash((name, i)) % 2**32)
            a.calc = SinglePointCalculator(a, energy=-7.0 * n)
            a.info["stage"] = "test"
            images.append(a)
        write(d / name, images, format="extxyz")
        return d / name

    a = make("a.extxyz", [(64, 2.0), (96, 3.0), (48, 2.5), (64, 3.5), (128, 2.2), (32, 3.0)])
    b = make("b.extxyz", [(80, 1.8), (64, 2.8), (40, 3.2)])
    return d, a, b


def homology(n, args, cwd):
    return run(
        [venv_tool("mpiexec"), "-n", n, venv_tool("topoamorph"), "homology", *args], cwd=cwd, check=False, timeout=300
    )


def test_output_identical_for_any_number_of_ranks(frames):
    d, a, b = frames
    outs = []
    for n in (1, 2, 3):
        out = d / f"out{n}.h5"
        p = homology(n, [f"{a}@1:6", str(b), "--output", out], d)
        assert p.returncode == 0, p.stderr
        outs.append(out)
    assert outs[0].read_bytes() == outs[1].read_bytes() == outs[2].read_bytes()
    back = read_diagrams(outs[0])
    assert list(back["frames"]["index"]) == [1, 2, 3, 4, 5, 0, 1, 2]
    assert [s.endswith(x) for s, x in zip(back["frames"]["source"], ["a.extxyz"] * 5 + ["b.extxyz"] * 3)]
    assert back["attrs"]["units"].startswith("angstrom^2") and back["attrs"]["maxdim"] == 2


def test_a_failing_frame_fails_the_job_and_writes_nothing(frames, tmp_path):
    d, a, b = frames
    text = a.read_text().splitlines()
    # corrupt one coordinate of the third frame into NaN
    n0 = int(text[0]) + 2
    n1 = int(text[n0]) + 2
    row = n0 + n1 + 2
    parts = text[row].split()
    parts[1] = "nan"
    text[row] = " ".join(parts)
    bad = tmp_path / "bad.extxyz"
    bad.write_text("\n".join(text) + "\n")
    out = tmp_path / "out.h5"
    p = homology(2, [str(bad), "--output", out], tmp_path)
    assert p.returncode != 0
    assert "bad.extxyz" in p.stderr and "frame 2" in p.stderr
    assert not out.exists() and not list(tmp_path.glob(".out.h5*"))


def test_missing_input_is_named(tmp_path):
    p = run(
        [venv_tool("topoamorph"), "homology", str(tmp_path / "none.extxyz"), "--output", tmp_path / "o.h5"], check=False
    )
    assert p.returncode != 0 and "none.extxyz" in p.stderr and "not found" in p.stderr


def test_rips_backend_and_more_ranks_than_frames(frames):
    d, a, b = frames
    outs = []
    for n in (1, 3):
        out = d / f"rips{n}.h5"
        p = homology(n, [f"{b}@0:2", "--output", out, "--backend", "rips", "--threshold", "3.5", "--maxdim", "1"], d)
        assert p.returncode == 0, p.stderr
        outs.append(out)
    assert outs[0].read_bytes() == outs[1].read_bytes()
    back = read_diagrams(outs[0])
    assert back["attrs"]["units"] == "angstrom (edge length)" and back["attrs"]["maxdim"] == 1
    assert all(r > 1 for r in back["frames"]["replicas"])  # 3.5 Å > L/3 for these 9.6 and 7.6 Å cells
    assert "rips_threshold_angstrom" in back["attrs"]["provenance"]
