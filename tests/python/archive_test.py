"""docker-py's put_archive, get_archive, export and diff against moor (tests/archive.rs
starts the daemon and a running busybox container named `box`)."""

import io
import tarfile

import docker

client = docker.from_env()
box = client.containers.get("box")

payload = io.BytesIO()
with tarfile.open(fileobj=payload, mode="w") as tar:
    data = b"from docker-py\n"
    info = tarfile.TarInfo("sdk.txt")
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
assert box.put_archive("/tmp", payload.getvalue()) is True

code, out = box.exec_run(["cat", "/tmp/sdk.txt"])
assert (code, out) == (0, b"from docker-py\n"), (code, out)

stream, stat = box.get_archive("/tmp/sdk.txt")
assert stat["name"] == "sdk.txt" and stat["size"] == 15, stat
got = tarfile.open(fileobj=io.BytesIO(b"".join(stream)))
assert got.extractfile("sdk.txt").read() == b"from docker-py\n"

try:
    box.get_archive("/no/such/file")
    raise AssertionError("a missing path was served")
except docker.errors.NotFound as e:
    assert "Could not find the file /no/such/file" in str(e), e

exported = tarfile.open(fileobj=io.BytesIO(b"".join(box.export())))
assert "tmp/sdk.txt" in exported.getnames(), exported.getnames()[:20]

changes = {c["Path"]: c["Kind"] for c in box.diff()}
assert changes.get("/tmp/sdk.txt") == 1, changes
print("archive ok")
