"""This machine's Ascend software, read as MindSpore 2.10's own check reads it (run_check/_check_version.py,
AscendEnvChecker): the CANN toolkit's version, the versions the installed MindSpore takes, and whether
``source /usr/local/Ascend/ascend-toolkit/set_env.sh`` was run in this shell. doctor.py reports them."""
import os


def cann_version():
    """The CANN toolkit's version, "8.5", read as MindSpore 2.10's own check reads it (``Version=`` in
    ``$ASCEND_HOME_PATH/compiler/version.info``; the default install folder when unset), or None."""
    home = os.environ.get("ASCEND_HOME_PATH") or "/usr/local/Ascend/ascend-toolkit/latest"
    path = os.path.join(home, "compiler", "version.info")
    if os.path.isfile(path):
        for line in open(path, errors="replace"):
            if line.startswith("Version="):
                return ".".join(line.strip().split("=", 1)[1].split(".")[:2])
    return None


def cann_versions_supported():
    """The CANN versions the installed MindSpore accepts, from its own check (run_check/_check_version.py)."""
    try:
        from mindspore.run_check._check_version import AscendEnvChecker
        return list(AscendEnvChecker(None).version)
    except (ImportError, AttributeError, TypeError):
        return []


def set_env_unset():
    """What ``source .../ascend-toolkit/set_env.sh`` sets and is missing here (the variables MindSpore's check
    reads), empty when it was sourced."""
    missing = [name for name in ("ASCEND_HOME_PATH", "ASCEND_OPP_PATH") if not os.environ.get(name)]
    if "/lib64" not in os.environ.get("LD_LIBRARY_PATH", ""):
        missing.append("LD_LIBRARY_PATH")
    return missing
