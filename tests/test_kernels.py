"""Building and choosing the compiled CPU kernels (dcgan_ms/kernels/), and the CPU runtime setting that
goes with them. Their mathematics is tested in test_models.py."""
import os
import platform
import shutil
import stat
import subprocess
import sys

import pytest

from conftest import run_cli
from dcgan_ms import kernels
from dcgan_ms.kernels import library
from dcgan_ms.kernels import choice
from dcgan_ms.errors import UserError


@pytest.fixture
def fresh_build(monkeypatch, tmp_path):
    """An empty library cache, and ``build`` forgetting what it built before and after the test."""
    monkeypatch.setenv("DCGAN_MS_CACHE", str(tmp_path / "cache"))
    library._build_once.cache_clear()
    choice._say_once.cache_clear()
    yield tmp_path
    library._build_once.cache_clear()


@pytest.fixture(scope="session")
def suite_library():
    """The kernels as the suite's own cache holds them (built once for the whole suite)."""
    lib = kernels.build()
    library._build_once.cache_clear()
    return lib


@pytest.fixture
def instant_compiler(fresh_build, suite_library, monkeypatch):
    """``fresh_build`` with $CXX a stand-in compiler that "compiles" in no time: each object an empty file,
    the library a copy of the suite's. For the tests of when the cache is used, not of what is compiled
    (test_build_compiles_once... compiles for real)."""
    monkeypatch.setenv("PATH", str(fresh_build / "bin") + os.pathsep + os.environ["PATH"])
    monkeypatch.setenv("CXX", "instant-c++")
    fake_compiler(fresh_build / "bin", "echo 'instant-c++ 1.0'", instantly(suite_library), name="instant-c++")
    return fresh_build


def instantly(library_file):
    """A stand-in compiler's command: ``-o OUT`` an empty object file, or with -shared a copy of ``library_file``."""
    return ('out=; prev=; for a in "$@"; do [ "$prev" = -o ] && out=$a; prev=$a; done\n'
            f'case " $* " in *" -shared "*) exec cp "{library_file}" "$out";; *) exec touch "$out";; esac')


@pytest.mark.slow
def test_build_compiles_once_into_the_cache_and_rebuilds_when_the_source_changes(fresh_build, monkeypatch):
    lib = kernels.build()
    assert lib.parent == fresh_build / "cache" and lib.exists()
    library._build_once.cache_clear()
    assert kernels.build() == lib  # found in the cache, not rebuilt under another name
    copies = fresh_build / "src"
    shutil.copytree(library.HERE, copies, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (copies / "leaky_relu.cc").write_text((copies / "leaky_relu.cc").read_text() + "\n// edited\n")
    monkeypatch.setattr(library, "SOURCES", tuple(copies / s.name for s in library.SOURCES))
    monkeypatch.setattr(library, "HEADER", copies / "common.h")
    library._build_once.cache_clear()
    assert kernels.build() != lib
    assert sorted(p.suffix for p in (fresh_build / "cache").iterdir()) == [".so", ".so"]  # no temp files left


def test_without_a_compiler_auto_falls_back_with_one_line_and_compiled_is_an_error(fresh_build, monkeypatch, capsys):
    monkeypatch.setenv("CXX", "no-such-c++")
    monkeypatch.setattr(choice, "cpu_flags", lambda: {"avx2", "avx512f"})
    monkeypatch.setattr(choice, "limit_onednn_to_avx2", lambda: "AVX2")
    assert kernels.use_compiled("auto") is False
    assert kernels.use_compiled("auto") is False
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no C++ compiler (no-such-c++)" in err and "built-in convolutions" in err
    assert f"on this AVX-512 CPU, with oneDNN limited to AVX2 code, expect steps about {kernels.BUILTIN_SLOWDOWN} " \
           "as long" in err
    with pytest.raises(UserError, match="unavailable: no C\\+\\+ compiler.*--conv builtin"):
        kernels.use_compiled("compiled")
    assert kernels.use_compiled("builtin") is False


def test_a_source_that_does_not_compile_is_reported_with_the_compilers_error(fresh_build, monkeypatch):
    broken = fresh_build / "broken.cc"
    broken.write_text("int f( {\n")
    monkeypatch.setattr(library, "SOURCES", (broken,))
    with pytest.raises(kernels.Unavailable, match="compiling broken.cc failed: .*error"):
        kernels.build()
    assert not list((fresh_build / "cache").iterdir())  # the failed output is not left behind
    monkeypatch.setattr(library, "SOURCES", (fresh_build / "absent.cc",))
    with pytest.raises(kernels.Unavailable, match="compiling broken.cc failed"):  # remembered, not rerun
        kernels.build()


def test_other_devices_use_mindspores_layers(monkeypatch):
    monkeypatch.setattr(choice, "current_device", lambda: "GPU")
    assert kernels.use_compiled("auto") is False
    with pytest.raises(UserError, match="only on CPU, not on GPU"):
        kernels.use_compiled("compiled")
    with pytest.raises(UserError, match="conv must be one of auto, compiled, builtin"):
        kernels.use_compiled("fast")


def test_train_with_conv_compiled_and_no_compiler_exits_with_one_line(tmp_path, flat_images):
    proc = run_cli("dcgan_ms.train", "--data_root", flat_images, "--batch_size", "8", "--ngf", "8", "--ndf", "8",
                   "--max_steps", "1", "--output_dir", str(tmp_path / "run"), "--no_progress", "--conv", "compiled",
                   env={"CXX": "no-such-c++", "DCGAN_MS_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "--conv builtin" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def blocking_run_after_set_device(value):
    env = {k: v for k, v in os.environ.items() if k != "MS_DEV_HOST_BLOCKING_RUN"}
    if value is not None:
        env["MS_DEV_HOST_BLOCKING_RUN"] = value
    code = "import os; from dcgan_ms.runtime import set_device; set_device('CPU'); print(os.environ['MS_DEV_HOST_BLOCKING_RUN'])"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.mark.slow
def test_set_device_cpu_runs_graphs_on_the_calling_thread_unless_the_user_chose_otherwise():
    assert blocking_run_after_set_device(None) == "1"
    assert blocking_run_after_set_device("0") == "0"


def normal_cdf(q):
    from math import erf, sqrt
    return 0.5 * (1 + erf(q / sqrt(2)))


def assert_standard_normal(x):
    """Mean, spread and the distribution function of ``x`` within a few standard errors of N(0, 1)."""
    import numpy as np
    n = len(x)
    assert abs(x.mean()) < 5 / np.sqrt(n) and abs(x.std() - 1) < 5 / np.sqrt(2 * n)
    for q in (-3, -2, -1, -0.3, 0, 0.3, 1, 2, 3):
        p = normal_cdf(q)
        assert abs((x < q).mean() - p) < 5 * np.sqrt(p * (1 - p) / n), q


def test_standard_normal_is_a_function_of_its_key_and_normal(instant_compiler, monkeypatch):
    import numpy as np
    x = kernels.standard_normal(1 << 20, (7, 11))
    assert x.dtype == np.float32 and x.shape == (1 << 20,) and np.isfinite(x).all()
    np.testing.assert_array_equal(x, kernels.standard_normal(1 << 20, (7, 11)))  # resumed runs rely on it
    other = kernels.standard_normal(1 << 20, (7, 12))
    assert abs(np.corrcoef(x, other)[0, 1]) < 0.01 and abs(np.corrcoef(x[:-1], x[1:])[0, 1]) < 0.01
    assert_standard_normal(x.astype(np.float64))
    np.testing.assert_array_equal(kernels.standard_normal(1000, (7, 11)), x[:1000])  # a prefix of the stream
    # Without the compiled library: NumPy's numbers for the key, the same distribution.
    monkeypatch.setenv("CXX", "no-such-c++")
    library._build_once.cache_clear()
    y = kernels.standard_normal(1 << 20, (7, 11))
    np.testing.assert_array_equal(y, kernels.standard_normal(1 << 20, (7, 11)))
    assert not np.array_equal(x, y)
    assert_standard_normal(y.astype(np.float64))


def test_onednn_is_limited_to_avx2_on_avx512_cpus_unless_the_user_chose(monkeypatch):
    from dcgan_ms import runtime
    for name in runtime.ONEDNN_LIMITS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(runtime, "cpu_flags", lambda: {"avx2", "fma"})
    assert runtime.limit_onednn_to_avx2() is None and "ONEDNN_MAX_CPU_ISA" not in os.environ
    monkeypatch.setattr(runtime, "cpu_flags", lambda: {"avx2", "avx512f"})
    monkeypatch.setenv("DNNL_MAX_CPU_ISA", "SSE41")  # the user's own, under oneDNN's older name
    assert runtime.limit_onednn_to_avx2() == "SSE41" and "ONEDNN_MAX_CPU_ISA" not in os.environ
    monkeypatch.delenv("DNNL_MAX_CPU_ISA")
    assert runtime.limit_onednn_to_avx2() == "AVX2" and os.environ["ONEDNN_MAX_CPU_ISA"] == "AVX2"


def onednn_isa_of_a_training_run(tmp_path, flat_images, conv, env=None):
    """The instruction set MindSpore's oneDNN dispatched in a one-step run (its ONEDNN_VERBOSE line)."""
    env = {**{k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")},
           "ONEDNN_VERBOSE": "1", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "dcgan_ms.train", "--data_root", flat_images, "--batch_size", "8",
                           "--ngf", "4", "--ndf", "4", "--nz", "8", "--max_steps", "1", "--conv", conv,
                           "--output_dir", str(tmp_path / f"{conv}-{len(os.listdir(tmp_path))}"), "--no_progress"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    isa = [line.split("isa:", 1)[1] for line in proc.stdout.splitlines() if ",cpu,isa:" in line]
    return isa[0] if isa else None


@pytest.mark.slow
@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="oneDNN's x86 instruction sets")
def test_builtin_convolutions_run_with_the_limit_set_before_onednn_starts(tmp_path, flat_images):
    from dcgan_ms.runtime import cpu_flags
    expected = "Intel AVX2" if "avx512f" in cpu_flags() else None
    isa = onednn_isa_of_a_training_run(tmp_path, flat_images, "builtin")
    if expected:  # the limit took effect: oneDNN read it at its first primitive
        assert isa == expected
    else:
        assert isa is not None and "AVX-512" not in isa
    # A user's own limit is kept.
    assert onednn_isa_of_a_training_run(tmp_path, flat_images, "builtin", {"ONEDNN_MAX_CPU_ISA": "SSE41"}) == \
        "Intel SSE4.1"


def test_the_fallback_says_what_it_costs_on_this_cpu(monkeypatch):
    monkeypatch.setattr(choice, "cpu_flags", lambda: {"avx2"})
    assert kernels.builtin_cost(None) == "expect somewhat slower steps than with the compiled kernels"
    monkeypatch.setattr(choice, "cpu_flags", lambda: {"avx2", "avx512f"})
    assert "steps take tens of times as long; unset it" in kernels.builtin_cost("ALL")
    assert "with ONEDNN_MAX_CPU_ISA=unset" not in kernels.builtin_cost("AVX512_CORE")
    assert kernels.builtin_cost("AVX2").endswith(f"expect steps about {kernels.BUILTIN_SLOWDOWN} as long")


# ---- The kernel cache loads only what this user built -------------------------------------------------
@pytest.mark.slow  # builds the kernels in a fresh cache
def test_the_cache_folder_is_made_private(instant_compiler):
    lib = kernels.build()
    assert stat.S_IMODE(os.stat(lib.parent).st_mode) == 0o700
    assert not os.stat(lib).st_mode & (stat.S_IWGRP | stat.S_IWOTH)


@pytest.mark.slow
def test_a_cache_others_can_write_is_not_loaded_and_the_kernels_are_built_privately(instant_compiler, capsys):
    cache = instant_compiler / "cache"
    shared = kernels.build()
    library._build_once.cache_clear()
    cache.chmod(0o777)  # a shared folder: anyone could have put a library there
    lib = kernels.build()
    assert lib != shared and lib.parent != cache and stat.S_IMODE(os.stat(lib.parent).st_mode) == 0o700
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"note: not using the kernel cache {cache} (group or others may write it " \
                                    "(mode 777))" in err and "set DCGAN_MS_CACHE" in err


@pytest.mark.slow  # builds the kernels in a fresh cache
def test_a_cache_another_user_owns_is_not_loaded(instant_compiler, monkeypatch, capsys):
    cache = instant_compiler / "cache"
    cache.mkdir(mode=0o700)
    owner = os.stat(cache).st_uid
    checked = library.untrusted_folder

    def as_another_user_sees_it(folder):  # this user's folder, checked as another user would see it
        with monkeypatch.context() as patch:
            patch.setattr(os, "geteuid", lambda: owner + 1)
            return checked(folder)

    monkeypatch.setattr(library, "untrusted_folder", as_another_user_sees_it)
    lib = kernels.build()
    assert lib.parent != cache
    assert f"not using the kernel cache {cache} (user {owner} owns it, not you ({owner + 1}))" in capsys.readouterr().err


@pytest.mark.slow
def test_a_library_that_is_a_link_or_writable_by_others_is_rebuilt_not_loaded(instant_compiler, tmp_path):
    lib = kernels.build()
    elsewhere = tmp_path / "elsewhere.so"
    shutil.move(lib, elsewhere)
    os.symlink(elsewhere, lib)
    library._build_once.cache_clear()
    assert kernels.build() == lib and not os.path.islink(lib)
    lib.chmod(0o777)
    inode = os.stat(lib).st_ino
    library._build_once.cache_clear()
    assert kernels.build() == lib and os.stat(lib).st_ino != inode and not os.stat(lib).st_mode & stat.S_IWOTH


def fake_compiler(folder, version_line, compile_command='exec g++ "$@"', name="fake-c++"):
    """A C++ compiler on PATH as ``name``: says ``version_line`` to --version, else runs ``compile_command``."""
    folder.mkdir(exist_ok=True)
    script = folder / name
    script.write_text(f'#!/bin/sh\nif [ "$1" = --version ]; then {version_line}; exit 0; fi\n{compile_command}\n')
    script.chmod(0o755)
    return script


@pytest.mark.slow
def test_an_upgraded_compiler_rebuilds(fresh_build, suite_library, monkeypatch):
    monkeypatch.setenv("PATH", str(fresh_build / "bin") + os.pathsep + os.environ["PATH"])
    monkeypatch.setenv("CXX", "fake-c++")
    fake_compiler(fresh_build / "bin", "echo 'fake-c++ 12.2.0'", instantly(suite_library))
    before = kernels.build()
    fake_compiler(fresh_build / "bin", "echo 'fake-c++ 13.1.0'", instantly(suite_library))
    library._build_once.cache_clear()
    assert kernels.build() != before


@pytest.mark.parametrize("version_line, compile_command, says", [
    ("sleep 60", "", "did not answer --version in 1 s"),
    ("echo 'fake-c++ 1'", "sleep 60", "compiling the kernels took over 1 s: the compiler seems to hang"),
])
def test_a_compiler_that_hangs_falls_back_with_one_line(fresh_build, monkeypatch, capsys, version_line,
                                                        compile_command, says):
    monkeypatch.setenv("PATH", str(fresh_build / "bin") + os.pathsep + os.environ["PATH"])
    monkeypatch.setenv("CXX", "fake-c++")
    monkeypatch.setattr(library, "VERSION_TIMEOUT", 1)
    monkeypatch.setattr(library, "COMPILE_TIMEOUT", 1)
    fake_compiler(fresh_build / "bin", version_line, compile_command)
    assert kernels.use_compiled("auto") is False
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err and "built-in convolutions" in err, err


def test_a_compiler_that_cannot_start_falls_back(fresh_build, monkeypatch):
    (fresh_build / "bin").mkdir()
    broken = fresh_build / "bin" / "fake-c++"
    broken.write_text("#!/no/such/interpreter\n")
    broken.chmod(0o755)
    monkeypatch.setenv("PATH", str(fresh_build / "bin") + os.pathsep + os.environ["PATH"])
    monkeypatch.setenv("CXX", "fake-c++")
    with pytest.raises(kernels.Unavailable, match=r"the C\+\+ compiler .*fake-c\+\+ cannot start"):
        kernels.build()


@pytest.mark.slow  # builds the kernels in a fresh cache
def test_mindspores_aot_white_list_is_honoured_and_set_while_an_operator_is_made(instant_compiler, monkeypatch, tmp_path):
    monkeypatch.setenv(library.WHITE_LIST, str(tmp_path / "somewhere-else"))
    with pytest.raises(kernels.Unavailable, match=r"outside MS_CUSTOM_AOT_WHITE_LIST=.*somewhere-else\): set "
                                                  r"DCGAN_MS_CACHE to a folder of yours inside"):
        kernels.build()
    monkeypatch.delenv(library.WHITE_LIST)
    library._build_once.cache_clear()
    seen = {}
    real_custom = library.ops.Custom

    def custom(*args, **kwargs):
        seen["white_list"] = os.environ.get(library.WHITE_LIST)
        return real_custom(*args, **kwargs)

    monkeypatch.setattr(library.ops, "Custom", custom)
    library.operator("LeakyForward", out_shape=library.same_as_first)  # not the cached leaky_relu_operator
    assert seen["white_list"] == str(instant_compiler / "cache") and library.WHITE_LIST not in os.environ


def run_kernel_benchmark(*flags):
    from conftest import REPO
    proc = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "bench_kernels.py"), "--batch_size", "2",
                           "--width", "4", "--rounds", "1", "--calls", "1", "--product_size", "64", *flags],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith(("| forward", "| input", "| weight"))]
    return proc.stdout, rows


def test_the_kernel_benchmark_calls_the_kernels_as_mindspore_does():
    """benchmarks/bench_kernels.py (A/B of kernel changes) calls the library through ctypes: on tiny shapes
    it runs every kernel and prints its table, with each kernel's rate and oneDNN's product's."""
    out, rows = run_kernel_benchmark("--precision", "fp32")
    assert len(rows) == 12 and "| all twelve |" in out and "oneDNN's product on this CPU" in out, out
    assert all(len(row.split("|")) == 5 for row in rows), rows  # label, ms, GFLOP/s


@pytest.mark.slow
def test_the_kernel_benchmark_checks_the_kernels_against_pytorchs_convolutions():
    """With --torch it also times PyTorch's own convolutions, in both precisions, and stops if their
    results are not the kernels' (so this checks the kernels against PyTorch's)."""
    pytest.importorskip("torch", reason="--torch times PyTorch's convolutions (requirements-test.txt)")
    out, rows = run_kernel_benchmark("--precision", "fp32", "bf16", "--torch")
    assert len(rows) == 24 and out.count("| all twelve |") == 2, out
    assert all(len(row.split("|")) == 6 for row in rows), rows  # label, this checkout, PyTorch, GFLOP/s


def test_the_library_loaded_is_the_one_checked_whatever_its_path_holds_later(monkeypatch, tmp_path):
    """Checked, then swapped for another file at the same path (as another account could, between the
    check and MindSpore's load): what is loaded is still the file that was checked."""
    import numpy as np
    from dcgan_ms.kernels.sort import sort_rows
    built = kernels.build()  # the suite's cache; a copy of it (another inode) in a cache of this test's own
    (tmp_path / "cache").mkdir(mode=0o700)
    shutil.copy2(built, tmp_path / "cache" / built.name)
    monkeypatch.setenv("DCGAN_MS_CACHE", str(tmp_path / "cache"))
    library._build_once.cache_clear()
    try:
        lib = kernels.build()
        assert lib == tmp_path / "cache" / built.name  # found, not rebuilt
        loaded = library.loaded_path()
        assert loaded.startswith("/proc/self/fd/") and os.path.samefile(loaded, lib)
        swapped = tmp_path / "swapped.so"
        swapped.write_bytes(b"not the library that was checked")
        os.replace(swapped, lib)
        rows = np.random.default_rng(3).standard_normal((4, 300)).astype(np.float32)
        assert np.array_equal(sort_rows(rows.copy()), np.sort(rows, axis=1))  # ctypes loads the checked one
        op = library.operator("LeakyForward", out_shape=library.same_as_first)
        assert op.func == f"{loaded}:LeakyForward"  # and MindSpore is handed the same descriptor
    finally:
        library._build_once.cache_clear()


def test_a_build_that_finishes_second_leaves_the_library_in_use_in_place(instant_compiler, suite_library):
    """Two workers (msrun's, or two nodes on one file system) that build the same kernels at once: the one
    that finishes second keeps the first's file, which the first has open and hands MindSpore as
    /proc/self/fd/N; replaced, it would name a deleted file that MindSpore cannot load."""
    from dcgan_ms import files
    lib = kernels.build()
    loaded, inode = library.loaded_path(), os.stat(lib).st_ino
    with files.written_whole(lib, mode=0o755, install=library._install_unless_trusted) as tmp:
        shutil.copy(suite_library, tmp)
    assert os.stat(lib).st_ino == inode and os.path.realpath(loaded) == str(lib)
