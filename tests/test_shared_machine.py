"""A shared machine (a login node, a lab server, a course folder many accounts write) cannot be turned
against a run: no writes through planted links, no run in a folder another account could plant them
in, no kernels loaded from a folder another account could swap. The lock's own case is in
test_resume.py, the compiled library's descriptor in test_kernels.py."""
import os
import stat

import pytest

from conftest import run_cli
from dcgan_ms import cache, files, run_folder
from dcgan_ms.callbacks.logs import CSVLog, opened_log
from dcgan_ms.errors import UserError


def folder_info(mode, gid=None):
    """An os.stat result for a folder of this user with ``mode``, in group ``gid``."""
    return os.stat_result((stat.S_IFDIR | mode, 0, 0, 2, os.geteuid(), os.getegid() if gid is None else gid,
                           0, 0, 0, 0))


def test_who_else_may_write_a_folder():
    assert not files.others_may_write(folder_info(0o755))
    assert files.others_may_write(folder_info(0o777))
    assert not files.others_may_write(folder_info(0o1777))  # sticky, as /tmp: others' entries only
    assert files.others_may_write(folder_info(0o775, gid=2 ** 31 - 7))  # a group that is not the user's own
    import grp
    import pwd
    own = grp.getgrgid(os.getegid())
    private = own.gr_name == pwd.getpwuid(os.geteuid()).pw_name and set(own.gr_mem) <= {own.gr_name}
    # the group useradd made for this user alone (umask 002 makes folders 0775): still the user's alone
    assert files.others_may_write(folder_info(0o775)) is not private


def test_a_run_refuses_a_folder_others_can_write_before_writing_anything(tmp_path):
    """The 0777 folder of another account, config.json in it a link to a file of this user: the run
    stops with one line, and the file and the folder are as they were."""
    shared, victim = tmp_path / "shared", tmp_path / "victim.txt"
    shared.mkdir()
    shared.chmod(0o777)
    victim.write_text("mine\n")
    (shared / "config.json").symlink_to(victim)
    proc = run_cli("dcgan_ms.train", "--dataset", "sample", "--max_steps", "1", "--output_dir", str(shared))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: the run's folder {shared} is not yours alone (other accounts may write it (mode 777, no sticky "
        "bit)): pass an --output_dir of your own, which only you can write")
    assert victim.read_text() == "mine\n" and sorted(os.listdir(shared)) == ["config.json"]


def test_a_folder_another_account_owns_is_refused_and_a_sticky_one_is_not(tmp_path, monkeypatch):
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    run_folder.prepare(str(sticky))  # others may add files, but not rename or remove this run's
    owner = os.geteuid()
    monkeypatch.setattr(os, "geteuid", lambda: owner + 1)  # this user's folder as another account sees it
    with pytest.raises(UserError, match=f"is not yours alone \\(user {owner} owns it, not you \\({owner + 1}\\)\\)"):
        run_folder.prepare(str(tmp_path / "theirs"))


def test_the_logs_are_never_written_through_a_link(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("mine\n")
    (tmp_path / "log.csv").symlink_to(victim)
    with pytest.raises(UserError, match="log.csv: it is a symbolic link, which no run makes: remove it"):
        CSVLog(str(tmp_path / "log.csv")).on_train_begin(None)
    (tmp_path / "swd.csv").symlink_to(victim)
    with pytest.raises(UserError, match="swd.csv: it is a symbolic link"):
        opened_log(str(tmp_path / "swd.csv"), append=True)
    assert victim.read_text() == "mine\n"


def test_the_kernel_cache_is_trusted_only_where_no_other_account_can_swap_it(tmp_path):
    """Every folder above the cache counts: under an open (0777, not sticky) folder another account could
    rename the cache away and put its own in its place; under a sticky one (as /tmp) it cannot."""
    open_parent = tmp_path / "open"
    (open_parent / "cache").mkdir(parents=True, mode=0o700)
    open_parent.chmod(0o777)
    assert cache.untrusted(open_parent / "cache") is None  # the folder itself is fine
    assert cache.untrusted_folder(open_parent / "cache") == (
        f"other accounts may write {open_parent} above it (mode 777, not sticky)")
    open_parent.chmod(0o1777)
    assert cache.untrusted_folder(open_parent / "cache") is None
    (tmp_path / "link").symlink_to(open_parent)  # as written and as resolved: both chains are checked
    open_parent.chmod(0o777)
    assert "above it" in cache.untrusted_folder(tmp_path / "link" / "cache")


def test_doctor_makes_the_cache_private_whatever_the_umask(tmp_path, monkeypatch):
    from dcgan_ms.doctor import OK, check_folders
    monkeypatch.setenv("DCGAN_MS_CACHE", str(tmp_path / "new" / "cache"))
    old = os.umask(0o002)
    try:
        check = check_folders(str(tmp_path / "out"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new" / "cache").st_mode) == 0o700
    parent_private = not files.others_may_write(os.stat(tmp_path / "new"))  # 0775: the user's own group?
    assert (check.status == OK) is parent_private, check
