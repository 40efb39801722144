"""Another commit of this repository beside the current checkout, for A/B benchmarks (``--against REV``)."""
import contextlib
import os
import subprocess
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@contextlib.contextmanager
def checkout(rev):
    """A temporary ``git worktree`` of ``rev``; removed afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "other")
        subprocess.run(["git", "worktree", "add", "--detach", folder, rev], cwd=REPO, check=True, capture_output=True)
        try:
            yield folder
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", folder], cwd=REPO, capture_output=True)
