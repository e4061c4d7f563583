"""docker-py against moor's issue-16 endpoints on a runc container (tests/docker_sdk.rs starts
a runc daemon with busybox imported as `bb`): stats, update, healthchecks, kill then remove."""

import time

import docker

client = docker.from_env()

# stats, one reading (stream=False waits for a second one: CPU is measured over it).
busy = client.containers.run("bb", ["sh", "-c", "while :; do :; done"], detach=True, name="busy")
reading = busy.stats(stream=False)
assert reading["cpu_stats"]["cpu_usage"]["total_usage"] > 0, reading["cpu_stats"]
assert reading["memory_stats"]["limit"] > 0, reading["memory_stats"]
assert reading["pids_stats"]["current"] >= 1, reading["pids_stats"]

# update: a new memory limit on the running container, shown back in inspect.
answer = busy.update(mem_limit="96m", memswap_limit="96m")
assert answer.get("Warnings") in (None, []), answer
busy.reload()
assert busy.attrs["HostConfig"]["Memory"] == 96 << 20, busy.attrs["HostConfig"]["Memory"]
print("stats and update ok")

# A healthcheck on a file: unhealthy until it exists, then healthy.
checked = client.containers.run(
    "bb",
    ["sleep", "1000"],
    detach=True,
    name="checked",
    healthcheck={
        "test": ["CMD-SHELL", "test -e /tmp/ok"],
        "interval": 1_000_000_000,
        "timeout": 1_000_000_000,
        "retries": 1,
    },
)


def health(container):
    container.reload()
    return container.attrs["State"].get("Health", {}).get("Status")


def wait_health(container, want):
    for _ in range(60):
        if health(container) == want:
            return
        time.sleep(0.5)
    raise AssertionError(f"health stayed {health(container)}, not {want}")


wait_health(checked, "unhealthy")
made = checked.exec_run(["busybox", "touch", "/tmp/ok"])
assert made.exit_code == 0, made
wait_health(checked, "healthy")
print("healthcheck ok")

# kill (SIGKILL) answers once the container is down: a remove right after it succeeds.
for round in range(5):
    box = client.containers.run("bb", ["sleep", "1000"], detach=True)
    box.kill()
    box.reload()
    assert box.status == "exited", (round, box.status)
    box.remove()
for c in (busy, checked):
    c.remove(force=True)
print("kill then remove ok")
