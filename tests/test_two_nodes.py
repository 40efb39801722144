"""Two msrun nodes on one machine: each launcher in a network namespace of its own, joined by a veth pair
(private addresses this test makes), one CPU worker each, training as one 2-rank run on shared files.
SIGTERM to node 1's launcher stops both ranks at the same step with a checkpoint, each launcher says so
naming its own node's log, and --resume on both nodes finishes the run.

Network namespaces need root: .ci/run runs this file as root after the suite (which runs as an
ordinary account); elsewhere it skips, saying why."""
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, logged_steps

SCRIPT = os.path.join(REPO, "scripts", "run_distributed.sh")
TINY = ["--dataset", "sample", "--batch_size", "8", "--ngf", "8", "--ndf", "8", "--nz", "16", "--no_progress"]


def namespaces_unavailable():
    if os.geteuid() != 0:
        return "network namespaces need root (.ci/run runs this test as root)"
    if not shutil.which("ip"):
        return "no ip command (Debian's iproute2)"
    if not os.path.exists(os.path.join(os.path.dirname(sys.executable), "msrun")):
        return "msrun is installed with mindspore; not found beside python"
    return None


pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(namespaces_unavailable() is not None, reason=namespaces_unavailable() or "")]


@pytest.fixture
def two_hosts():
    """Two namespaces, dcgan<pid>n0 at 10.231.X.1 and dcgan<pid>n1 at 10.231.X.2, joined by a veth pair."""
    names, subnet = [f"dcgan{os.getpid()}n{n}" for n in (0, 1)], os.getpid() % 250
    veths = [f"dcg{os.getpid() % 100000}v{n}" for n in (0, 1)]
    commands = [["ip", "netns", "add", names[0]], ["ip", "netns", "add", names[1]],
                ["ip", "link", "add", veths[0], "type", "veth", "peer", "name", veths[1]]]
    for n in (0, 1):
        commands += [["ip", "link", "set", veths[n], "netns", names[n]],
                     ["ip", "-n", names[n], "addr", "add", f"10.231.{subnet}.{n + 1}/24", "dev", veths[n]],
                     ["ip", "-n", names[n], "link", "set", veths[n], "up"],
                     ["ip", "-n", names[n], "link", "set", "lo", "up"]]
    try:
        for command in commands:
            made = subprocess.run(command, capture_output=True, text=True)
            if made.returncode:
                pytest.skip(f"cannot make the test's network namespaces here ({' '.join(command)}: "
                            f"{made.stderr.strip()})")
        yield names, f"10.231.{subnet}.1"
    finally:
        for name in names:  # the veth pair goes with them
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


def start(namespace, node, master, logs, flags):
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
           "NODES": "2", "NODE_RANK": str(node), "MASTER_ADDR": master, "LOG_DIR": str(logs)}
    env.pop("MASTER_PORT", None)  # msrun's default port, free in a new namespace
    return subprocess.Popen(["ip", "netns", "exec", namespace, "bash", SCRIPT, "1", *flags], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def finish(launchers, timeout=300):
    """Each launcher's output, once both have ended; whatever is left is killed."""
    try:
        return [launcher.communicate(timeout=timeout)[0] for launcher in launchers]
    finally:
        for launcher in launchers:
            if launcher.poll() is None:
                os.killpg(launcher.pid, signal.SIGKILL)


def test_two_nodes_stop_together_when_one_launcher_is_stopped_and_resume_on_both(tmp_path, two_hosts):
    (node0, node1), master = two_hosts
    out = tmp_path / "run"
    launchers = [start(ns, n, master, tmp_path / f"logs{n}", [*TINY, "--epochs", "50", "--output_dir", str(out)])
                 for n, ns in enumerate((node0, node1))]
    deadline = time.time() + 240
    while min(len(logged_steps(out, r)) for r in (0, 1)) < 3:  # both ranks are training
        assert all(launcher.poll() is None for launcher in launchers), finish(launchers)
        assert time.time() < deadline, "the two nodes did not start training"
        time.sleep(0.2)
    launchers[1].send_signal(signal.SIGTERM)  # a scheduler stopping node 1's job
    outputs = finish(launchers)
    assert [launcher.returncode for launcher in launchers] == [130, 130], outputs
    for n, output in enumerate(outputs):  # each names the log its own node has
        assert output.strip().splitlines()[-1] == (
            f"interrupted: the workers stopped together and saved (see {tmp_path / f'logs{n}'}/worker_{n}.log); run "
            "the same command with --resume to continue"), output[-3000:]
    steps = [logged_steps(out, r) for r in (0, 1)]
    stopped = steps[0][-1]
    assert steps[0] == steps[1] == list(range(1, stopped + 1))
    assert (out / "checkpoints" / f"step_{stopped:07d}.ckpt").is_file()

    launchers = [start(ns, n, master, tmp_path / f"logs{n}", ["--resume", "--output_dir", str(out), "--max_steps",
                                                             str(stopped + 2), "--no_progress"])
                 for n, ns in enumerate((node0, node1))]
    outputs = finish(launchers)
    assert [launcher.returncode for launcher in launchers] == [0, 0], outputs
    assert logged_steps(out, 0) == logged_steps(out, 1) == list(range(1, stopped + 3))
    assert (out / "checkpoints" / f"step_{stopped + 2:07d}.ckpt").is_file()
