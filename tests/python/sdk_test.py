"""Issue 7: the Docker SDK for Python against moor (DOCKER_HOST is set by tests/docker_sdk.rs).

Prints one line per check; any failed assertion exits non-zero with a traceback.
"""

import docker
from docker.errors import APIError, NotFound

client = docker.from_env()
assert client.ping() is True
assert client.version()["ApiVersion"] == "1.44"

# containers.run, not detached: returns the output (read through logs).
out = client.containers.run("host", ["sh", "-c", "echo hello"], remove=True)
assert out == b"hello\n", out
print("run attached ok")

# containers.run detached, with labels.
web = client.containers.run("host", ["sleep", "1000"], name="web", detach=True, labels={"tier": "front"})
other = client.containers.run("host", ["sh", "-c", "echo out; exit 4"], name="other", detach=True)
assert other.wait()["StatusCode"] == 4
assert other.logs() == b"out\n"
print("run detached, wait, logs ok")

# list with filters (both shapes are produced by the SDK's and the CLI's encoders).
assert [c.name for c in client.containers.list()] == ["web"]
assert sorted(c.name for c in client.containers.list(all=True)) == ["other", "web"]
assert [c.name for c in client.containers.list(filters={"label": "tier=front"})] == ["web"]
assert [c.name for c in client.containers.list(all=True, filters={"status": "exited"})] == ["other"]
assert [c.name for c in client.containers.list(all=True, filters={"name": "oth"})] == ["other"]
assert [c.name for c in client.containers.list(all=True, filters={"exited": "4"})] == ["other"]
print("list ok")

# get, attrs.
got = client.containers.get("web")
assert got.id == web.id and got.status == "running" and got.attrs["State"]["Running"] is True
assert got.attrs["Name"] == "/web"
print("get ok")

# Errors: NotFound (404) and APIError 409.
try:
    client.containers.get("nope")
    raise SystemExit("get nope did not raise")
except NotFound as e:
    assert e.status_code == 404 and e.explanation == "No such container: nope", e.explanation
try:
    web.remove()
    raise SystemExit("remove of a running container did not raise")
except APIError as e:
    assert e.status_code == 409, e.status_code
    assert e.explanation == (
        'cannot remove container "/web": container is running: '
        "stop the container before removing or force remove"
    ), e.explanation
try:
    client.containers.run("host", ["true"], name="web", detach=True)
    raise SystemExit("a name conflict did not raise")
except APIError as e:
    assert e.status_code == 409, e.status_code
    assert e.explanation.startswith('Conflict. The container name "/web" is already in use'), e.explanation
print("errors ok")

# Issue 16: a field moor does not implement is refused by name, never dropped.
for kwargs, field in [
    # Binds work on runc; the process runtime has no mount namespace and says so.
    ({"volumes": ["/tmp:/data"]}, "HostConfig.Binds is not supported by the process runtime"),
    ({"ports": {"80/tcp": 8080}}, "HostConfig.PortBindings"),
    ({"cap_add": ["NET_ADMIN"]}, "HostConfig.CapAdd"),
    ({"privileged": True}, "HostConfig.Privileged"),
]:
    try:
        client.containers.create("host", ["true"], **kwargs)
        raise SystemExit(f"{kwargs} was not refused")
    except APIError as e:
        assert e.status_code == 400 and field in e.explanation, (kwargs, e.explanation)
assert sorted(c.name for c in client.containers.list(all=True)) == ["other", "web"]
print("refused fields ok")

# Issue 13: a Tty container through the SDK's attach socket: one raw stream, resizable.
term = client.containers.run("host", ["busybox", "sh"], name="term", detach=True, tty=True, stdin_open=True)
assert term.attrs["Config"]["Tty"] is True
raw = term.attach_socket(params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})._sock
raw.settimeout(20)


def read_until(needle):
    got = b""
    while needle not in got:
        chunk = raw.recv(4096)
        assert chunk, got
        got += chunk
    assert b"\x01\x00\x00\x00" not in got, got
    return got


raw.sendall(b"echo py-$((2*21))\n")
read_until(b"py-42")
term.resize(height=33, width=77)
raw.sendall(b"stty size\n")
read_until(b"33 77")
raw.sendall(b"exit 2\n")
assert term.wait()["StatusCode"] == 2
assert b"py-42" in term.logs()
raw.close()
term.remove()
print("tty attach socket ok")

# stop, wait, remove.
web.stop(timeout=5)
assert web.wait()["StatusCode"] == 143
web.remove()
other.remove(v=True)
assert client.containers.list(all=True) == []
print("stop, wait, remove ok")
